"""Event files in, records out: readers for event formats, and the event datasets (data/)."""
