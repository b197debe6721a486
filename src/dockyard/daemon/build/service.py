"""BuildService: evaluates a Dockerfile in a build context and makes the
image, emitting Docker's progress messages as it goes.

Contract with api/build.py:
    image_id = await daemon.builder.build(opts, context_dir, emit)
  - `context_dir`: the unpacked context (context.py), owned by the caller,
    who removes it afterwards. `opts.dockerfile` names the Dockerfile in it
    (what context.unpack_context returned).
  - `emit(msg: dict)` is awaited for each progress message, in Docker's
    shapes: {"stream": "Step 1/5 : FROM bb\\n"}, {"stream": " ---> 1a2b3c4d5e6f\\n"},
    {"aux": {"ID": "sha256:..."}} (after each stage, as moby), then
    {"stream": "Successfully built <12 hex>\\n"} and one
    {"stream": "Successfully tagged name:tag\\n"} per opts.tags: the engine
    tags. Every message goes out even with opts.quiet: the API drops the
    "stream" ones and writes the id itself, as moby's handler does.
    A step's result line (" ---> <id>") also carries "cacheKey" (the step's
    key in the build cache) and "cached" (bool), a RUN's also "startTrace"
    (its container's start trace, as inspect shows it): clients ignore
    unknown keys.
  - an error before the first message (a Dockerfile that does not parse, an
    unknown --target, a bad tag) is raised as is (the API answers it with its
    status, as dockerd does before its stream starts); a failure after the
    first message raises BuildFailed (its message is Docker's wording, its
    `code` the RUN's exit code when there is one); the API writes it into
    the stream as {"errorDetail": {...}, "error": ...}.
  - cancellation (the client went away) cancels the task: nothing is left
    behind (containers, mounts, layers of unfinished steps).
    await prune(all, filters) -> (deleted cache ids, bytes reclaimed)   POST /build/prune
    usage() -> list of BuildCache records                         GET /system/df

The steps themselves: the config rules are in steps.py (pure), images are
made by commit.py, the cache is cache.py. RUN rides the daemon's own
create + start path (lifecycle.py), its output read from conmon's attach
socket; COPY/ADD/WORKDIR work in a private overlay over the parent's layers
(no container: moby's performCopy makes none either).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from typing import TYPE_CHECKING, Awaitable, Callable

from ... import linux
from ...errors import BuildFailed, DockyardError, InvalidParameter, NoSuchImage
from ...images.lookup import short_id
from . import remote, steps
from .cache import BuildCache, CacheFrom, step_key
from .dockerfile import Dockerfile, Instruction, Stage, parse
from .options import BuildOptions

if TYPE_CHECKING:
    from ..daemon import Daemon

log = logging.getLogger("dockyard.build")

Emit = Callable[[dict], Awaitable[None]]


class _Cancelled(Exception):
    pass


class BuildService:
    def __init__(self, daemon: "Daemon"):
        self.d = daemon
        self.cache = BuildCache(daemon.db, daemon.images)
        self.work_root = os.path.join(daemon.config.data_root, "builder")
        _unmount_under(self.work_root)                          # a crash's leftovers: overlays first,
        shutil.rmtree(self.work_root, ignore_errors=True)      # then their dirs
        os.makedirs(self.work_root, mode=0o700, exist_ok=True)

    async def build(self, opts: BuildOptions, context_dir: str, emit: Emit) -> str:
        return await _Build(self, opts, context_dir, emit).run()

    async def prune(self, all: bool = False, filters: dict | None = None) -> tuple[list[str], int]:
        return await asyncio.to_thread(self.cache.prune, all, filters)

    def usage(self) -> list[dict]:
        return self.cache.usage()


class _Build:
    """One build: its stages, stream and leftovers."""

    def __init__(self, svc: BuildService, opts: BuildOptions, context_dir: str, emit: Emit):
        self.svc, self.d, self.opts, self.context_dir = svc, svc.d, opts, context_dir
        self._emit = emit
        self.started = False
        self.total = 0
        self.index = 0
        self.containers: list = []          # made and not yet removed
        self.removals: list[asyncio.Task] = []
        self.work = ""
        self.stage_images: list[tuple[str, str]] = []      # (name, image id) of finished stages
        self.referenced: set[str] = set()
        self.busted = False
        self.timings: list[tuple[str, float]] = []
        self.start_trace: dict | None = None     # the last RUN container's, for its result line

    # ------------------------------------------------------------ stream
    async def emit(self, msg: dict) -> None:
        self.started = True
        await self._emit(msg)

    async def out(self, text: str, **extra) -> None:
        await self.emit({"stream": text, **extra})

    # ------------------------------------------------------------ the build
    async def run(self) -> str:
        opts = self.opts
        refs = self._tags()
        tree = self._source_tree()
        df = parse(await asyncio.to_thread(tree.read_dockerfile, opts.dockerfile), opts.dockerfile)
        stages = df.stages
        if opts.target:
            idx = df.stage_index(opts.target)
            if idx is None:
                raise InvalidParameter(f'target stage "{opts.target}" could not be found')
            stages = stages[:idx + 1]
        for k in sorted(opts.labels):
            stages[-1].commands.append(Instruction("LABEL", f"LABEL {k}={opts.labels[k]}", [k, opts.labels[k]],
                                                   no_expand=True))
        self.tree = tree
        self.cache_from = None
        if opts.cache_from and not opts.nocache:
            self.cache_from = await asyncio.to_thread(CacheFrom, self.d.images, list(opts.cache_from))
        self.work = os.path.join(self.svc.work_root, os.urandom(8).hex())
        os.makedirs(self.work, mode=0o700)
        try:
            image_id = await self._dispatch_all(df, stages)
        except asyncio.CancelledError:
            await asyncio.shield(self._cleanup(remove=True))       # nobody is left to ask for them
            raise
        except BaseException as e:
            # a failed step's container goes too (unlike dockerd's, which keeps it
            # unless forcerm): a failed build leaves nothing unless rm=false
            await asyncio.shield(self._cleanup(remove=self.opts.rm or self.opts.forcerm))
            if not self.started or isinstance(e, BuildFailed):
                raise
            if isinstance(e, DockyardError):
                raise BuildFailed(e.message) from e
            if isinstance(e, OSError):
                log.exception("build failed")
                raise BuildFailed(str(e)) from e
            raise
        await self._cleanup(remove=self.opts.rm or self.opts.forcerm)
        await self.out(f"Successfully built {short_id(image_id)}\n")
        for ref in refs:
            await asyncio.to_thread(self.d.images.tag, image_id, ref.familiar_name, ref.tag)
            await self.out(f"Successfully tagged {ref.familiar()}\n")
        log.info("build %s: %s", short_id(image_id),
                 ", ".join(f"{name} {secs * 1000:.0f}ms" for name, secs in self.timings))
        return image_id

    def _tags(self) -> list:
        from ...images.reference import parse_normalized
        out = []
        for t in self.opts.tags:
            ref = parse_normalized(t)
            if ref.digest:
                raise InvalidParameter("refusing to create a tag with a digest reference")
            out.append(ref.with_default_tag())
        return out

    def _source_tree(self):
        """The context as COPY/ADD see it: .dockerignore'd paths invisible
        (the file read inside the context: a symlink there never reads a
        host file; a malformed one is ignored, as moby)."""
        from .context import SourceTree
        tree = SourceTree(self.context_dir)
        tree.ignore = tree.read_dockerignore()
        return tree

    @staticmethod
    def _check_platform(platform: str, name: str, doc: dict) -> None:
        """moby's GetImage with a platform: the image's must match it."""
        if not platform:
            return
        arch_alias = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}
        want = platform.lower().split("/")
        if len(want) > 1:
            want[1] = arch_alias.get(want[1], want[1])
        have = [doc.get("os") or "linux", doc.get("architecture") or ""]
        if doc.get("variant"):
            have.append(doc["variant"])
        if want[0] != have[0] or (len(want) > 1 and want[1] != have[1]) or \
                (len(want) > 2 and len(have) > 2 and want[2] != have[2]):
            raise InvalidParameter(f"image with reference {name} was found but its platform ({'/'.join(have)}) "
                                   f"does not match the specified platform ({platform})")

    async def _dispatch_all(self, df: Dockerfile, stages: list[Stage]) -> str:
        from .shell import ShellLex
        self.lex = ShellLex(df.escape)
        args = steps.BuildArgs(self.opts.buildargs)
        self.total = len(df.meta_args) + len(stages) + sum(len(s.commands) for s in stages)
        for ins in df.meta_args:
            await self._step(ins)
            env = args.all_allowed()
            for word in ins.args:
                k, v = steps.split_arg(word)
                if v is not None:
                    v = self.lex.process_word(v, env)
                args.add_arg(k, v)
                args.add_meta(k, v)
        state = None
        for stage in stages:
            if stage.name and any(n == stage.name for n, _ in self.stage_images):
                raise InvalidParameter(f"{stage.name} stage name already used")
            state = steps.State(stage_name=stage.name, args=args.clone())
            state.args.allowed = {}
            await self._step(stage.original)
            await self._from(stage, state)
            await self.out(f" ---> {short_id(state.image_id)}\n")
            for ins in stage.commands:
                await self._step(ins)
                t0 = time.perf_counter()
                self.start_trace = None
                key, cached = await self._dispatch(ins, state)
                self.timings.append((ins.cmd, time.perf_counter() - t0))
                extra = {"startTrace": self.start_trace} if self.start_trace else {}
                await self.out(f" ---> {short_id(state.image_id)}\n", cacheKey=key, cached=cached, **extra)
            if state.image_id:
                await self.emit({"aux": {"ID": state.image_id}})
            self.referenced |= state.args.referenced
            self.stage_images.append((stage.name, state.image_id))
        unused = args.unused(self.referenced)
        if unused:
            await self.out(f"[Warning] One or more build-args {steps.go_v_slice(unused)} were not consumed\n")
        if state is None or not state.image_id:
            raise BuildFailed("No image was generated. Is your Dockerfile empty?")
        return state.image_id

    async def _step(self, ins) -> None:
        self.index += 1
        await self.out(f"Step {self.index}/{self.total} : {ins}\n")

    # ------------------------------------------------------------ FROM
    async def _from(self, stage: Stage, state: steps.State) -> None:
        self.busted = False          # moby resets its cache prober at every FROM
        meta = state.args.all_meta()
        name = self.lex.process_word(stage.base, meta)
        if not name:
            raise InvalidParameter(f"base name ({stage.base}) should not be blank")
        platform = self.lex.process_word(stage.platform, meta) if stage.platform else self.opts.platform
        for sname, image_id in self.stage_images:
            if sname and sname == name.lower():
                state.begin(image_id, self.d.images.resolve(image_id).config.get("config") or {})
                break
        else:
            if name == "scratch":
                state.begin("", {}, scratch=True)
            else:
                img = await self._image(name)
                self._check_platform(platform, name, img.config)
                state.begin(img.id, img.config.get("config") or {})
        triggers = state.config.get("OnBuild") or []
        if triggers:
            state.config["OnBuild"] = None
            await self.out(f"# Executing {len(triggers)} build trigger{'s' if len(triggers) > 1 else ''}\n")
            for trig in triggers:
                df = parse(f"FROM scratch\n{trig}\n")
                cmds = df.stages[0].commands
                if len(cmds) != 1:
                    raise InvalidParameter("onbuild trigger should be a single expression")
                await self._dispatch(cmds[0], state)

    async def _image(self, name: str):
        """FROM's image: local, else pulled (moby's PullOptionPreferLocal)."""
        images = self.d.images
        if not self.opts.pull:
            try:
                return images.resolve(name)
            except NoSuchImage:
                pass
        from ...images.progress import Progress
        from ...images.reference import parse_normalized
        from ...images.registry import AuthConfig
        ref = parse_normalized(name).with_default_tag()
        auth = AuthConfig.from_dict(self.opts.auth_configs.get(ref.domain)
                                    or self.opts.auth_configs.get("https://index.docker.io/v1/"
                                                                  if ref.domain == "docker.io" else ref.domain))
        msgs: list[dict] = []
        try:
            transfer = await asyncio.to_thread(images.pull, ref, auth, None, self.d.config.insecure_registries)
            await asyncio.to_thread(transfer.run, Progress(msgs.append))
        except DockyardError:
            try:
                return images.resolve(name)     # --pull of an image only we have
            except NoSuchImage:
                pass
            raise
        for m in msgs:
            await self.emit(m)
        return images.resolve(str(ref))

    # ------------------------------------------------------------ dispatch
    async def _dispatch(self, ins: Instruction, state: steps.State) -> tuple[str, bool]:
        """Run one instruction; returns (cache key, whether the cache served it)."""
        if not state.image_id and not state.from_scratch:
            raise InvalidParameter("Please provide a source image with `from` prior to commit")
        env = state.env_for_expansion()
        if not ins.no_expand:
            ins = steps.expand(self.lex, ins, env)
        if ins.cmd == "RUN":
            return await self._run(ins, state)
        if ins.cmd in ("COPY", "ADD"):
            return await self._copy(ins, state)
        notes: list[str] = []
        comment = steps.apply_metadata(ins, state, self.lex, notes)
        for n in notes:
            await self.out(n)
        if ins.cmd == "WORKDIR":
            recorded = steps.probe_config(state, state.shell() + ["#(nop) " + comment])
            return await self._commit_fs(state, recorded, comment, self._mkdir_workdir)
        recorded = steps.probe_config(state, steps.nop_comment(state, comment))
        return await self._commit_fs(state, recorded, comment, None)

    def _probe(self, state: steps.State, recorded: dict) -> tuple[str, str | None]:
        key = step_key(state.image_id, recorded)
        if self.opts.nocache or self.busted:
            return key, None
        hit = self.svc.cache.get(key)
        if self.cache_from is not None:
            if hit is not None and not self.cache_from.ancestor_of_source(hit):
                hit = None
            if hit is None:
                hit = self.cache_from.probe(state.image_id, recorded)
        if hit is None:
            self.busted = True
        return key, hit

    async def _commit(self, state: steps.State, recorded: dict, description: str, key: str,
                      upper: str | None, container_id: str = "", movable: bool = False,
                      keep_upper: bool = False) -> None:
        cfg = steps.full_config(state.config)
        cfg["Image"] = state.image_id
        image_id, size = await asyncio.to_thread(
            _commit_step, self.d.images, state.image_id, cfg, recorded, upper, container_id, state.maintainer,
            movable, keep_upper)
        self.svc.cache.put(key, state.image_id, image_id, description, size)
        state.image_id = image_id
        state.from_scratch = False

    async def _commit_fs(self, state: steps.State, recorded: dict, description: str,
                         work: Callable | None, cmd_name: str = "") -> tuple[str, bool]:
        """A step whose change (if any) is made by `work(root)` in a private
        overlay over the parent's layers; None: config only."""
        key, hit = self._probe(state, recorded)
        if hit:
            await self.out(" ---> Using cache\n")
            state.image_id = hit
            state.from_scratch = False
            return key, True
        if work is None:
            await self._commit(state, recorded, description, key, None)
            return key, False
        t0 = time.perf_counter()
        base = os.path.join(self.work, os.urandom(6).hex())
        try:
            async with self._overlay(state.image_id, base) as (root, upper):
                t1 = time.perf_counter()
                await asyncio.to_thread(work, root, state)
            t2 = time.perf_counter()
            # unmounted: the upper dir is the layer's files as they are (moved, not copied)
            await self._commit(state, recorded, description, key, upper, movable=True)
        finally:
            await asyncio.to_thread(shutil.rmtree, base, True)
        log.debug("%s: mount %.0fms, work %.0fms, commit %.0fms", description[:40], (t1 - t0) * 1000,
                  (t2 - t1) * 1000, (time.perf_counter() - t2) * 1000)
        return key, False

    @contextlib.asynccontextmanager
    async def _overlay(self, image_id: str, base: str):
        """(root to write in, upper dir) of a private overlay over the image
        at `base`, unmounted on the way out (the caller removes `base`)."""
        upper, wd, merged = (os.path.join(base, n) for n in ("upper", "work", "merged"))
        for p in (upper, wd, merged):
            os.makedirs(p, mode=0o755)
        lowers = self.d.images.lower_dirs(image_id) if image_id else []
        if not lowers:
            yield upper, upper      # nothing below: the upper dir is the whole root
            return
        opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={wd}"
        await asyncio.to_thread(linux.mount, "overlay", merged, "overlay", 0, opts)
        try:
            yield merged, upper
        finally:
            await asyncio.to_thread(linux.umount, merged, False)

    @staticmethod
    def _mkdir_workdir(root: str, state: steps.State) -> None:
        """WORKDIR's directory, made in the root as moby does (root-owned,
        0755); symlinks on the way resolve inside the root."""
        from ...inroot import Root, components
        parts = components(state.config["WorkingDir"])
        with Root(root) as r:
            for i in range(1, len(parts) + 1):
                with r.lookup("/" + "/".join(parts[:i])) as f:
                    if f.exists:
                        continue
                with r.lookup("/" + "/".join(parts[:i - 1])) as parent:
                    os.mkdir(parts[i - 1], 0o755, dir_fd=parent.fd)
                    fd = os.open(parts[i - 1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent.fd)
                    try:
                        os.fchmod(fd, 0o755)        # whatever the daemon's umask
                    finally:
                        os.close(fd)

    # ------------------------------------------------------------ COPY / ADD
    async def _copy(self, ins: Instruction, state: steps.State) -> tuple[str, bool]:
        from .context import SourceTree, check_dest, copy_sources
        cmd = ins.cmd
        for flag in ("parents", "exclude", "checksum", "keep-git-dir"):
            if ins.flags.get(flag):
                raise InvalidParameter(f"the --{flag} option requires BuildKit. Refer to "
                                       "https://docs.docker.com/go/buildkit/ to learn how to build images "
                                       "with BuildKit enabled")
        srcs, dest = ins.args[:-1], ins.args[-1]
        chown = str(ins.flags.get("chown") or "")
        chmod_s = str(ins.flags.get("chmod") or "")
        chmod = None
        if chmod_s:
            try:
                chmod = int(chmod_s, 8)
                if chmod > 0o7777:
                    raise ValueError
            except ValueError:
                raise InvalidParameter(f"invalid chmod parameter: '{chmod_s}'. it should be octal string "
                                       "and between 0 and 07777") from None
        from_ = str(ins.flags.get("from") or "")
        tree, from_root = self.tree, None
        async with contextlib.AsyncExitStack() as stack:
            if from_:
                if cmd == "ADD":
                    raise InvalidParameter("unknown flag: from")
                from_root = await stack.enter_async_context(self._from_root(from_))
                tree = SourceTree(from_root, hostile=True)
            urls = [x for x in srcs if remote.is_url(x)] if cmd == "ADD" else []
            if cmd == "COPY" and any(remote.is_url(x) for x in srcs):
                raise BuildFailed("COPY failed: source can't be a URL for COPY")
            local = [x for x in srcs if x not in urls]
            sources = await asyncio.to_thread(tree.sources, local, cmd) if local else []
            fetched = []          # (tree, sources) of each downloaded URL
            for url in urls:
                dl = os.path.join(self.work, "dl-" + os.urandom(6).hex())
                os.makedirs(dl, mode=0o700)
                name = await asyncio.to_thread(remote.download, url, dl, dest.endswith("/"), cmd)
                utree = SourceTree(dl)
                fetched.append((utree, await asyncio.to_thread(utree.sources, [name], cmd)))
            check_dest(sources + [s for _, ss in fetched for s in ss], dest, cmd)
            # moby's source hashes (file:<tarsum>, dir:, multi:), as dockerd writes them in the
            # history line, which is also what the cache key is made of
            t0 = time.perf_counter()
            hashes = [await asyncio.to_thread(tree.history_hash, [src]) for src in sources]
            for utree, usources in fetched:
                hashes += [await asyncio.to_thread(utree.history_hash, [src]) for src in usources]
            log.debug("%s: source hashes %.0fms", cmd, (time.perf_counter() - t0) * 1000)
            if len(hashes) == 1:
                checksum = hashes[0]
            else:
                import hashlib
                checksum = "multi:" + hashlib.sha256(",".join(hashes).encode()).hexdigest()
            comment = steps.copy_comment(cmd, chown, checksum, dest)
            recorded = steps.probe_config(state, state.shell() + ["#(nop) " + comment])
            if chmod is not None:      # not in moby's (BuildKit-only there): keep it in the key
                recorded = dict(recorded)
                recorded["Cmd"] = state.shell() + [f"#(nop) {comment}--chmod={chmod_s} "]
            workdir = state.config.get("WorkingDir") or "/"

            def work(root: str, st: steps.State) -> None:
                owner = None
                if chown:
                    from .. import users
                    try:
                        uid, gid, _ = users.resolve(chown, root)
                    except InvalidParameter as e:
                        raise InvalidParameter("unable to convert uid/gid chown string to host mapping: "
                                               + e.message) from None
                    owner = (uid, gid)
                if sources:
                    copy_sources(tree, sources, root, dest, workdir=workdir, chown=owner, chmod=chmod,
                                 extract_archives=(cmd == "ADD"), cmd=cmd,
                                 preserve_ownership=bool(from_) and owner is None)
                for utree, usources in fetched:       # a download is never extracted
                    copy_sources(utree, usources, root, dest, workdir=workdir, chown=owner, chmod=chmod,
                                 cmd=cmd)
            return await self._commit_fs(state, recorded, f"{cmd} {' '.join(srcs)} {dest}", work)

    @contextlib.asynccontextmanager
    async def _from_root(self, ref: str):
        """COPY --from's root: a finished stage (by name or index) or an image."""
        image_id = None
        for name, iid in self.stage_images:
            if name and name == ref.lower():
                image_id = iid
        if image_id is None and ref.isdigit():
            i = int(ref)
            if i == len(self.stage_images):
                raise InvalidParameter(f"invalid from flag value {ref}: refers to current build stage")
            if i > len(self.stage_images):
                raise InvalidParameter(f"invalid from flag value {ref}: index out of bounds")
            image_id = self.stage_images[i][1]
        if image_id is None:
            image_id = (await self._image(ref)).id
        if not image_id:        # a scratch stage that made nothing
            empty = os.path.join(self.work, "empty-" + os.urandom(4).hex())
            os.makedirs(empty)
            yield empty
            return
        lowers = self.d.images.lower_dirs(image_id)
        if len(lowers) == 1:
            yield lowers[0]
            return
        mnt = os.path.join(self.work, "from-" + os.urandom(6).hex())
        os.makedirs(mnt)
        await asyncio.to_thread(linux.mount, "overlay", mnt, "overlay", linux.MS_RDONLY,
                                f"lowerdir={':'.join(lowers)}")
        try:
            yield mnt
        finally:
            await asyncio.to_thread(linux.umount, mnt)

    # ------------------------------------------------------------ RUN
    def _host_config(self) -> dict:
        o = self.opts
        hc = {"NetworkMode": o.networkmode or "default", "LogConfig": {"Type": "none", "Config": {}},
              "ExtraHosts": list(o.extra_hosts) or None, "Memory": o.memory, "MemorySwap": o.memswap,
              "CpuShares": o.cpushares, "CpusetCpus": o.cpusetcpus, "CpuPeriod": o.cpuperiod,
              "CpuQuota": o.cpuquota, "ShmSize": o.shmsize, "Ulimits": list(o.ulimits) or None}
        return {k: v for k, v in hc.items() if v not in (None, 0, "")}

    async def _run(self, ins: Instruction, state: steps.State) -> tuple[str, bool]:
        cmd, save, build_env = steps.run_commands(ins, state)
        recorded = steps.probe_config(state, save, clear_entrypoint=True)
        key, hit = self._probe(state, recorded)
        if hit:
            await self.out(" ---> Using cache\n")
            state.image_id = hit
            return key, True
        body = steps.run_container_config(state, cmd, build_env)
        for k in ("Hostname", "Domainname"):
            body.pop(k, None)
        body["HostConfig"] = self._host_config()
        d = self.d
        t0 = time.perf_counter()
        c = d.lifecycle.create(body, None)
        self.containers.append(c)
        for w in getattr(c, "create_warnings", None) or []:
            await self.out(f" ---> [Warning] {w}\n")
        await self.out(f" ---> Running in {c.short_id}\n")
        t1 = time.perf_counter()
        keep = not (self.opts.rm or self.opts.forcerm)
        staging = None
        try:
            code, staging = await self._start_and_wait(c, keep)
            t2 = time.perf_counter()
            self.start_trace = c.start_trace or None
            staged, size = await staging
            staging = None
            if code != 0:
                self.d.images.layers.discard(staged)
                raise BuildFailed(f"The command '{' '.join(cmd)}' returned a non-zero code: {code}", code=code)
        except BaseException:
            if staging is not None:
                await asyncio.shield(self._discard_staging(staging))
            raise
        cfg = steps.full_config(state.config)
        cfg["Image"] = state.image_id
        image_id = await asyncio.to_thread(_record_step, self.d.images, state.image_id, cfg, recorded, staged,
                                           c.id, state.maintainer)
        self.svc.cache.put(key, state.image_id, image_id, ins.original, size)
        state.image_id = image_id
        t3 = time.perf_counter()
        if not keep:
            self._remove_soon(c)
            await self.out(f" ---> Removed intermediate container {c.short_id}\n")
        log.debug("RUN %s: create %.0fms, start+run+exit %.0fms (start trace %s ms), commit %.0fms",
                  c.short_id, (t1 - t0) * 1000, (t2 - t1) * 1000,
                  {s["Step"]: s["Ms"] for s in (c.start_trace or {}).get("Steps", [])}, (t3 - t2) * 1000)
        return key, False

    async def _discard_staging(self, staging: asyncio.Future) -> None:
        try:
            staged, _ = await staging
        except Exception:
            return
        self.d.images.layers.discard(staged)

    async def _start_and_wait(self, c, keep_upper: bool) -> tuple[int, asyncio.Future]:
        """Start the step's container, stream its output, and once its
        processes are gone stage its layer (in a thread) while the daemon
        records the exit and tears the container down: (exit code, the
        staging: (staged layer or None, bytes))."""
        from ..lifecycle import wait_process_gone
        d = self.d
        fut = d.attach.wait_for_start(c.id)
        exited = c.exit_event
        try:
            await d.lifecycle.start(c)
        except BaseException:
            d.attach.cancel(c.id, fut)
            if not fut.done():
                fut.cancel()
            raise
        pid = c.state.pid
        try:
            sock = await asyncio.wait_for(fut, 5)
        except Exception:
            sock = None
        finally:
            d.attach.cancel(c.id, fut)
        t0 = time.perf_counter()
        if sock is not None:
            try:
                await self._pump(sock)
            finally:
                sock.close()
        t1 = time.perf_counter()
        # the container's init gone means its whole pid namespace is (the kernel
        # reaps the rest first): its upper dir is final, whatever the exit path is at
        waits = [asyncio.ensure_future(exited.wait())]
        if pid:
            waits.append(asyncio.ensure_future(wait_process_gone(pid, None)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        upper = d.layout.container(c.id).rootfs.upper
        staging = asyncio.ensure_future(asyncio.to_thread(_stage_layer, d.images, upper, keep_upper))
        try:
            code = await self._exit_code(c, exited)
        except BaseException:
            await asyncio.shield(self._discard_staging(staging))
            raise
        log.debug("RUN %s: output ended %.0fms after start, exit code known %.0fms later", c.short_id,
                  (t1 - t0) * 1000, (time.perf_counter() - t1) * 1000)
        return code, staging

    async def _exit_code(self, c, exited: asyncio.Event) -> int:
        """The step's exit code as soon as conmon has written it (it is gone
        then), not after the daemon's whole exit handling; that goes on
        meanwhile (the container's removal waits for it under its lock)."""
        from ...runtime import conmon
        from ..lifecycle import wait_process_gone
        waits = [asyncio.ensure_future(exited.wait())]
        if c.conmon_pid:
            waits.append(asyncio.ensure_future(wait_process_gone(c.conmon_pid, None)))
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            waits[0].cancel()
            raise
        finally:
            for w in waits[1:]:
                w.cancel()
        if waits[0] not in done:
            code = conmon.read_exit_code(self.d.layout.container(c.id), c.id)
            if code is not None:
                waits[0].cancel()
                return code
        await waits[0]        # consumed by the exit handling meanwhile: it has the code
        return int(c.state.exit_code)

    async def _pump(self, sock) -> None:
        loop = asyncio.get_running_loop()
        pending = b""
        while True:
            pkt = await loop.sock_recv(sock, 65536)
            if not pkt:
                break
            if pkt[0] not in (2, 3) or len(pkt) < 2:
                continue
            pending += pkt[1:]
            if b"\n" in pending:
                head, _, pending = pending.rpartition(b"\n")
                await self.out((head + b"\n").decode("utf-8", errors="replace"))
        if pending:
            await self.out(pending.decode("utf-8", errors="replace"))

    def _remove_soon(self, c) -> None:
        """Remove a finished step's container while the next step runs (the
        build waits for every removal before it reports its end)."""
        async def remove() -> None:
            try:
                await self.d.lifecycle.remove(c, force=True, volumes=True)
            except DockyardError as e:
                log.warning("removing intermediate container %s: %s", c.short_id, e.message)
                return
            if c in self.containers:
                self.containers.remove(c)
        self.removals.append(asyncio.ensure_future(remove()))

    # ------------------------------------------------------------ leftovers
    async def _cleanup(self, remove: bool) -> None:
        if self.removals:
            await asyncio.gather(*self.removals, return_exceptions=True)
            self.removals.clear()
        for c in list(self.containers) if remove else []:
            try:
                await self.d.lifecycle.remove(c, force=True, volumes=True)
            except Exception as e:
                log.warning("removing build container %s: %s", c.short_id, e)
        self.containers.clear()
        if self.work:
            await asyncio.to_thread(shutil.rmtree, self.work, True)


def _unmount_under(root: str) -> None:
    """Unmount whatever is mounted at or below `root` (deepest first)."""
    prefix = root.rstrip("/") + "/"
    for p in sorted((p for p in linux.mount_points() if p.startswith(prefix)), key=len, reverse=True):
        try:
            linux.umount(p)
        except OSError as e:
            log.warning("unmounting %s: %s", p, e)


def _stage_layer(images, upper, keep_upper):
    from .commit import stage_layer
    return stage_layer(images, upper, keep_upper=keep_upper)


def _record_step(images, parent_id, cfg, recorded, staged, container_id, author):
    from .commit import record_step
    return record_step(images, parent_id, cfg, recorded, staged, container_id=container_id, author=author)


def _commit_step(images, parent_id, cfg, recorded, upper, container_id, author, movable, keep_upper):
    from .commit import commit_step
    return commit_step(images, parent_id, cfg, recorded, upper, container_id=container_id, author=author,
                       movable=movable, keep_upper=keep_upper)
