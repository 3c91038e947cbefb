"""Live sources: `crisismon follow` produces files to `crisis.events` as they are published.

A `Source` (source.py) lists the files published so far and fetches one, checked; the
`Follower` (follower.py) reads each new file with the readers, in name order, produces its
records, and records the file in `crisis.follow.progress` (progress.py) once Kafka has them.
Two sources: GDELT 2.0's 15-minute exports over HTTP (gdelt.py), and a folder another system
drops files into (folder.py).
"""
