"""BuildService: evaluates a Dockerfile in a build context and makes the
image, emitting Docker's progress messages as it goes.

Contract with api/build.py:
    image_id = await daemon.builder.build(opts, context_dir, emit)
  - `context_dir`: the unpacked context (context.py), owned by the caller,
    who removes it afterwards.
  - `emit(msg: dict)` is awaited for each progress message, in Docker's
    shapes: {"stream": "Step 1/5 : FROM bb\\n"}, {"stream": " ---> 1a2b3c4d5e6f\\n"},
    {"aux": {"ID": "sha256:..."}}, ...
  - a failure after the first message raises BuildFailed (its message is
    Docker's wording, its `code` the RUN's exit code when there is one); the
    API writes it into the stream as {"errorDetail": {...}, "error": ...}.
  - cancellation (the client went away) cancels the task: nothing is left
    behind (containers, mounts, layers of unfinished steps).
    prune(all, filters) -> (deleted cache ids, bytes reclaimed)   POST /build/prune
    usage() -> list of BuildCache records                         GET /system/df
"""
