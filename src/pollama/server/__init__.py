"""HTTP only: routes, streaming, middleware. Talks to the scheduler and the store, never to ctypes."""
