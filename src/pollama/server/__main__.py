from pollama.server.serve import serve

raise SystemExit(serve())
