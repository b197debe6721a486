"""The build engine's pure parts: parsing (daemon/build/dockerfile.py) and
the classic builder's config and history rules (daemon/build/steps.py),
held against what moby's builder/dockerfile writes."""
from __future__ import annotations

import pytest

from dockyard.daemon.build import steps
from dockyard.daemon.build.cache import step_key
from dockyard.daemon.build.dockerfile import ParseError, parse
from dockyard.daemon.build.shell import ShellLex
from dockyard.errors import InvalidParameter


# ---------------------------------------------------------------- parsing

def test_parse_stages_meta_args_and_flags():
    df = parse(b"ARG V=1\nFROM busybox:$V AS Build\nCOPY --from=x --chown=1:2 a b /c/\n"
               b"RUN echo \\\n  hi\nFROM scratch\nCMD [\"x\"]\n")
    assert [a.original for a in df.meta_args] == ["ARG V=1"]
    assert [(s.base, s.name) for s in df.stages] == [("busybox:$V", "build"), ("scratch", "")]
    cp, run = df.stages[0].commands
    assert cp.flags == {"from": "x", "chown": "1:2"} and cp.args == ["a", "b", "/c/"]
    assert run.original == "RUN echo   hi" and run.args == ["echo   hi"]
    assert df.stages[1].commands[0].json and df.stages[1].commands[0].args == ["x"]
    assert df.stage_index("BUILD") == 0 and df.stage_index("nope") is None


def test_escape_directive():
    df = parse("# escape=`\nFROM x\nRUN echo `\n  hi\n")
    assert df.escape == "`" and df.stages[0].commands[0].args == ["echo   hi"]


@pytest.mark.parametrize("text,message", [
    ("FROM x\nFOO bar\n", "dockerfile parse error on line 2: unknown instruction: FOO (did you mean FROM?)"),
    ("FROM x\nfrobnicate a\n", "dockerfile parse error on line 2: unknown instruction: frobnicate"),
    ("FROM x\nRUNN x\n", "dockerfile parse error on line 2: unknown instruction: RUNN (did you mean RUN?)"),
    ("FROM x\nRUN a\nENV a\n", "dockerfile parse error on line 3: ENV must have two arguments"),
    ("RUN x\n", "dockerfile parse error on line 1: no build stage in current context"),
    ("FROM a b\n", "dockerfile parse error on line 1: FROM requires either one or three arguments"),
    ("FROM a AS 1x\n", 'dockerfile parse error on line 1: invalid name for build stage: "1x", '
                       "name can't start with a number or contain symbols"),
    ("FROM x\nCOPY --bogus=1 a b\n", "dockerfile parse error on line 2: unknown flag: bogus"),
    ("FROM x\nCOPY a\n", "dockerfile parse error on line 2: COPY requires at least two arguments, but only one "
                         "was provided. Destination could not be determined"),
    ("FROM x\nONBUILD ONBUILD RUN x\n",
     "dockerfile parse error on line 2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM x\nONBUILD FROM y\n", "dockerfile parse error on line 2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM x\nSHELL sh -c\n", "dockerfile parse error on line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM x\nHEALTHCHECK --interval=1ns CMD x\n",
     'dockerfile parse error on line 2: Interval "interval" cannot be less than 1ms'),
    ("FROM x\nHEALTHCHECK NONE x\n", "dockerfile parse error on line 2: HEALTHCHECK NONE takes no arguments"),
    ("FROM x\nHEALTHCHECK FOO x\n", 'dockerfile parse error on line 2: Unknown type "FOO" in HEALTHCHECK (try CMD)'),
    ("# just a comment\n", "dockerfile parse error on line 1: file with no instructions"),
    ("", "the Dockerfile (Dockerfile) cannot be empty"),
])
def test_parse_errors_use_dockers_words(text, message):
    with pytest.raises(ParseError) as e:
        parse(text)
    assert e.value.message == message
    assert e.value.status == 400


# ---------------------------------------------------------------- formatting

@pytest.mark.parametrize("ns,text", [(0, "0s"), (5 * 10**9, "5s"), (90 * 10**9, "1m30s"), (3600 * 10**9, "1h0m0s"),
                                     (1500 * 10**6, "1.5s"), (500 * 10**6, "500ms"), (1500, "1.5µs")])
def test_go_duration(ns, text):
    assert steps.go_duration(ns) == text


def test_healthcheck_comment_is_gos_percent_q():
    hc = {"Test": ["CMD-SHELL", "curl -f http://x/ || exit 1"], "Interval": 300 * 10**9, "Timeout": 3 * 10**9,
          "Retries": 3}
    assert steps.healthcheck_comment(hc) == \
        '&{["CMD-SHELL" "curl -f http://x/ || exit 1"] "5m0s" "3s" "0s" "0s" \'\\x03\'}'
    assert steps.healthcheck_comment({"Test": ["NONE"]}) == '&{["NONE"] "0s" "0s" "0s" "0s" \'\\x00\'}'


# ---------------------------------------------------------------- instructions

def _state(config=None, args=None) -> steps.State:
    st = steps.State(args=steps.BuildArgs(args or {}))
    st.begin("sha256:" + "a" * 64, config or {"Cmd": ["sh"]})
    return st


def _ins(line: str):
    return parse("FROM x\n" + line + "\n").stages[0].commands[0]


def _apply(st, line: str) -> str:
    lex = ShellLex()
    ins = steps.expand(lex, _ins(line), st.env_for_expansion())
    return steps.apply_metadata(ins, st, lex, [])


def test_begin_defaults_path_and_full_config():
    st = _state()
    assert st.config["Env"] == ["PATH=" + steps.DEFAULT_PATH]
    assert list(st.config)[:3] == ["Hostname", "Domainname", "User"]
    assert "Healthcheck" not in st.config and st.config["Cmd"] == ["sh"]


def test_env_label_history_and_expansion():
    st = _state()
    assert _apply(st, "ENV A=1 B=\"two words\"") == "ENV A=1 B=two words"
    assert _apply(st, "ENV A=${A}0") == "ENV A=10"
    assert st.config["Env"][1:] == ["A=10", "B=two words"]
    assert _apply(st, 'LABEL "x y"=$B') == "LABEL x y=two words"
    assert st.config["Labels"] == {"x y": "two words"}
    assert steps.nop_comment(st, "ENV A=1") == ["/bin/sh", "-c", "#(nop) ", "ENV A=1"]


def test_cmd_entrypoint_rules():
    st = _state({"Cmd": ["sh"], "Entrypoint": ["old"]})
    assert _apply(st, "ENTRYPOINT [\"ep\"]") == 'ENTRYPOINT ["ep"]'
    assert st.config["Cmd"] is None                  # ENTRYPOINT resets the base's CMD
    assert _apply(st, "CMD echo hi") == 'CMD ["/bin/sh" "-c" "echo hi"]'
    assert st.config["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    _apply(st, "ENTRYPOINT ep2")                     # a CMD of this Dockerfile stays
    assert st.config["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert st.config["Entrypoint"] == ["/bin/sh", "-c", "ep2"]
    st2 = _state({"Cmd": ["sh"]})
    _apply(st2, "CMD []")                            # an empty CMD does not count as set
    _apply(st2, 'ENTRYPOINT ["x"]')
    assert st2.config["Cmd"] is None
    _apply(st, 'SHELL ["/bin/bash", "-c"]')
    assert steps.nop_comment(st, "x")[:2] == ["/bin/bash", "-c"]


def test_workdir_expose_volume_user_stopsignal():
    st = _state()
    assert _apply(st, "WORKDIR /a") == "WORKDIR /a"
    assert _apply(st, "WORKDIR b/../c") == "WORKDIR /a/c"
    assert _apply(st, "EXPOSE 80 53/udp 8000-8001") == "EXPOSE 80 53/udp 8000-8001"
    assert st.config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
    assert _apply(st, 'VOLUME ["/v1", "/v2"]') == "VOLUME [/v1 /v2]"
    assert _apply(st, "USER 1000:1000") == "USER 1000:1000"
    assert _apply(st, "STOPSIGNAL SIGINT") == "STOPSIGNAL SIGINT"
    with pytest.raises(InvalidParameter):
        _apply(st, "STOPSIGNAL NOPE")
    with pytest.raises(InvalidParameter):
        _apply(st, "EXPOSE abc")


def test_healthcheck_and_onbuild():
    st = _state()
    out: list[str] = []
    lex = ShellLex()
    msg = steps.apply_metadata(_ins("HEALTHCHECK --interval=5s --start-period=1s CMD [\"true\"]"), st, lex, out)
    assert st.config["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5 * 10**9, "StartPeriod": 10**9}
    assert msg.startswith('HEALTHCHECK &{["CMD" "true"] "5s" "0s" "1s" "0s"')
    steps.apply_metadata(_ins("HEALTHCHECK NONE"), st, lex, out)
    assert out == ['Note: overriding previous HEALTHCHECK: [CMD true]\n']
    assert _apply(st, "ONBUILD RUN echo $X") == "ONBUILD RUN echo $X"    # kept for the child build
    assert st.config["OnBuild"] == ["RUN echo $X"]


def test_run_with_build_args_records_them_as_moby():
    st = _state(args={"WHO": "me", "HTTP_PROXY": "http://p", "UNUSED": "u"})
    _apply(st, "ARG WHO")
    cmd, save, env = steps.run_commands(_ins("RUN echo $WHO"), st)
    assert cmd == ["/bin/sh", "-c", "echo $WHO"]
    assert sorted(env) == ["HTTP_PROXY=http://p", "WHO=me"]          # the proxy is in RUN's environment...
    assert save == ["|1", "WHO=me", "/bin/sh", "-c", "echo $WHO"]     # ...not in its history
    run_cfg = steps.run_container_config(st, cmd, env)
    assert run_cfg["Entrypoint"] == [""] and run_cfg["Healthcheck"] == {"Test": ["NONE"]}
    assert "WHO=me" in run_cfg["Env"]
    probe = steps.probe_config(st, save, clear_entrypoint=True)
    assert probe["Cmd"] == save and probe["Image"] == st.image_id
    _apply(st, "ENV WHO=env")                                          # ENV wins over the build arg
    assert steps.run_commands(_ins("RUN x"), st)[1][:1] == ["|0"]
    with pytest.raises(InvalidParameter, match="the --mount option requires BuildKit"):
        steps.run_commands(_ins("RUN --mount=type=cache,target=/x true"), st)


def test_build_args_scoping_and_unused():
    args = steps.BuildArgs({"A": "opt", "B": None, "C": "c"})
    args.add_meta("A", "meta")
    args.add_arg("A", "meta")
    assert args.all_meta()["A"] == "opt"                               # --build-arg wins
    st = steps.State(args=args.clone())
    st.args.allowed = {}
    st.begin("", {})
    _apply(st, "ARG A")
    assert st.args.all_allowed() == {"A": "opt"}
    _apply(st, "ARG B=default")
    assert st.args.all_allowed()["B"] == "default"                     # B given without a value
    assert args.unused(st.args.referenced) == ["C"]


def test_copy_comment_and_cache_key():
    assert steps.copy_comment("COPY", "", "file:abc", "/x") == "COPY file:abc in /x "
    assert steps.copy_comment("ADD", "1:1", "dir:d", "/y/") == "ADD --chown=1:1 dir:d in /y/ "
    a = step_key("sha256:p", {"Cmd": ["a"]})
    assert a == step_key("sha256:p", {"Cmd": ["a"]}) and len(a) == 64
    assert a != step_key("sha256:q", {"Cmd": ["a"]}) and a != step_key("sha256:p", {"Cmd": ["b"]})
