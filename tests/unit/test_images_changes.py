"""`--change` lines (Dockerfile syntax) applied to an image config."""
import pytest

from dockyard.errors import InvalidParameter
from dockyard.images.changes import apply_changes


def test_cmd_and_entrypoint_exec_and_shell_forms():
    assert apply_changes(['CMD ["sh", "-c", "echo hi"]'])["Cmd"] == ["sh", "-c", "echo hi"]
    assert apply_changes(["CMD echo $HOME"])["Cmd"] == ["/bin/sh", "-c", "echo $HOME"]   # no expansion
    assert apply_changes(["ENTRYPOINT top -b"])["Entrypoint"] == ["/bin/sh", "-c", "top -b"]
    assert apply_changes(['ENTRYPOINT ["/init"]'])["Entrypoint"] == ["/init"]
    assert apply_changes(["CMD [not json"])["Cmd"] == ["/bin/sh", "-c", "[not json"]


def test_entrypoint_drops_cmd_unless_cmd_was_set_in_the_same_changes():
    assert apply_changes(["ENTRYPOINT x"], {"Cmd": ["old"]})["Cmd"] is None
    assert apply_changes(["CMD keep", "ENTRYPOINT x"])["Cmd"] == ["/bin/sh", "-c", "keep"]


def test_env_forms_quotes_and_expansion():
    cfg = apply_changes(['ENV A=1 B="two words" C=\'$A\' D=$A', "ENV E ${A}-legacy value",
                         "ENV A=2", "ENV F=${A:-x}${NOPE:-dflt}${A:+set}"])
    assert cfg["Env"] == ["B=two words", "C=$A", "D=", "E=1-legacy value", "A=2", "F=2dfltset"]


def test_labels_workdir_user_stopsignal():
    cfg = apply_changes(["ENV APP=/srv", 'LABEL a=b "c d"="e f"', "LABEL legacy one two",
                         "WORKDIR $APP", "WORKDIR sub/../data", "USER 1000:1000", "STOPSIGNAL SIGINT"])
    assert cfg["Labels"] == {"a": "b", "c d": "e f", "legacy": "one two"}
    assert cfg["WorkingDir"] == "/srv/data"
    assert cfg["User"] == "1000:1000"
    assert cfg["StopSignal"] == "SIGINT"
    assert apply_changes(["STOPSIGNAL 9"])["StopSignal"] == "9"


def test_expose_and_volume():
    cfg = apply_changes(["EXPOSE 80 53/udp 8000-8002/tcp", 'VOLUME ["/data", "/logs"]', "VOLUME /cache"])
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}}
    assert cfg["Volumes"] == {"/data": {}, "/logs": {}, "/cache": {}}


def test_healthcheck():
    cfg = apply_changes(["HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD curl -f http://x/"])
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f http://x/"], "Interval": 30_000_000_000,
                                  "Timeout": 90_000_000_000, "Retries": 3}
    assert apply_changes(['HEALTHCHECK CMD ["true"]'])["Healthcheck"] == {"Test": ["CMD", "true"]}
    assert apply_changes(["HEALTHCHECK NONE"])["Healthcheck"] == {"Test": ["NONE"]}


def test_keywords_are_case_insensitive_and_blank_lines_skipped():
    assert apply_changes(["", "# comment", "cmd x"])["Cmd"] == ["/bin/sh", "-c", "x"]


@pytest.mark.parametrize("change, message", [
    ("RUN echo hi", "run is not a valid change command"),
    ("FROM scratch", "from is not a valid change command"),
    ("CMD", "CMD requires at least one argument"),
    ("EXPOSE 99999", "invalid containerPort: 99999"),
    ("EXPOSE 80/xyz", "invalid proto: xyz"),
    ("STOPSIGNAL SIGNOPE", "Invalid signal: SIGNOPE"),
    ("ENV A=1 =2", "ENV names can not be blank"),
    ('ENV A="open', "unexpected end of statement while looking for matching double-quote"),
    ("HEALTHCHECK --interval=soon CMD x", "HEALTHCHECK --interval"),
])
def test_invalid_changes(change, message):
    with pytest.raises(InvalidParameter, match=message.replace("(", r"\(")):
        apply_changes([change])


def test_input_config_is_not_modified():
    base = {"Env": ["A=1"]}
    apply_changes(["ENV B=2"], base)
    assert base == {"Env": ["A=1"]}
