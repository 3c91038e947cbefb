// The worker's JSON API (see services/web/models.py for the shapes).
//
// With a token configured, the worker set an HttpOnly cookie when the page was opened as
// /?access_token=..., so same-origin requests carry it; the page never sees the token.

export class AuthError extends Error {
  constructor() {
    super('not authorised (401)');
    this.name = 'AuthError';
  }
}

export class NotFound extends Error {
  constructor(detail) {
    super(detail);
    this.name = 'NotFound';
  }
}

export async function getJson(path) {
  const response = await fetch(path, {
    credentials: 'same-origin',
    headers: { Accept: 'application/json' },
    cache: 'no-store',
  });
  if (response.status === 401) throw new AuthError();
  if (!response.ok) {
    // The API answers errors as {status, detail} (problem+json).
    let detail = `${response.status} ${response.statusText}`;
    try {
      detail = (await response.json()).detail || detail;
    } catch {
      // not JSON: keep the status line
    }
    if (response.status === 404) throw new NotFound(detail);
    throw new Error(detail);
  }
  return response.json();
}

const part = encodeURIComponent;

export const api = {
  config: () => getJson('/api/config'),
  status: () => getJson('/api/status'),
  dyads: () => getJson('/api/dyads'),
  // Up to the latest event time the worker has seen, at most `points` samples.
  curve: (dyad, points) => getJson(`/api/dyads/${part(dyad)}/curve?points=${points}`),
  alerts: (dyad, limit = 200) =>
    getJson(`/api/alerts?limit=${limit}${dyad ? `&dyad=${part(dyad)}` : ''}`),
  events: (limit = 100) => getJson(`/api/events?limit=${limit}`),
  // By query, not path: an id may be `..` or hold a `/`, which no URL path keeps as it is.
  event: async (id) => {
    const { events } = await getJson(`/api/events?id=${part(id)}`);
    if (!events.length) throw new NotFound(`no event ${id}`);
    return events[0];
  },
};
