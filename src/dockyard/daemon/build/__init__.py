"""The classic builder (`POST /build`, moby's builder/dockerfile): a
Dockerfile evaluated step by step on the daemon's own create/start path.

Modules (one job each):
  options.py     BuildOptions: the request, parsed and checked (api/build.py fills it)
  shell.py       moby's shell lexer: $var, ${var:-x}, ${var:+x}, quotes, escapes, word splitting
  dockerignore.py .dockerignore patterns with moby's matching rules (also used by the CLI)
  context.py     the context tar (plain/gzip/bzip2/xz or a bare Dockerfile) unpacked safely,
                 COPY/ADD source resolution, copying into a build container's root, source checksums
  dockerfile.py  parsing (the `dockerfile` package: moby's own parser) and directives
  service.py     BuildService: stages, dispatch of each instruction, cache, commits, progress
  cache.py       the build cache: step keys -> images, what system df shows and build prune frees
"""
