"""Flag parsing with docker's (pflag) rules."""
import pytest

from dockyard.cli.flags import BOOL, INT, LIST, STRING, Command, Flag, HelpRequested, UsageError
from dockyard.cli.run import RUN

SPEC = Command("[OPTIONS] NAME [NAME...]", "Do things", [
    Flag("all", "a"), Flag("quiet", "q"), Flag("env", "e", LIST), Flag("name", kind=STRING),
    Flag("time", "t", INT), Flag("rm", kind=BOOL),
], min_args=1)


def parse(argv, spec=SPEC):
    return spec.parse(argv, "dockyard thing")


def test_long_short_and_equals_forms():
    opts, args = parse(["--name", "x", "-t", "3", "--env=A=1", "-eB=2", "-e=C=3", "-e", "D", "n"])
    assert (opts.name, opts.time, opts.env, args) == ("x", 3, ["A=1", "B=2", "C=3", "D"], ["n"])


def test_combined_short_bools_and_a_trailing_value_flag():
    opts, args = parse(["-aqt", "5", "n"])
    assert (opts.all, opts.quiet, opts.time) == (True, True, 5)


def test_bool_with_explicit_value():
    assert parse(["--rm=false", "n"])[0].rm is False
    assert parse(["--rm=true", "n"])[0].rm is True
    assert parse(["-a=false", "n"])[0].all is False


def test_flags_may_follow_arguments_unless_the_command_stops_at_the_first():
    opts, args = parse(["n1", "-a", "n2"])
    assert opts.all and args == ["n1", "n2"]
    opts, args = RUN.parse(["-d", "img", "ls", "-l", "--rm"], "dockyard run")
    assert opts.detach and not opts.rm and args == ["img", "ls", "-l", "--rm"]


def test_double_dash_ends_flags():
    opts, args = parse(["--", "-a"])
    assert not opts.all and args == ["-a"]


def test_given_records_what_the_user_set():
    opts, _ = parse(["--name", "", "n"])
    assert "name" in opts.given and "time" not in opts.given


@pytest.mark.parametrize("argv, message", [
    (["--bogus", "n"], "unknown flag: --bogus"),
    (["-x", "n"], "unknown shorthand flag: 'x' in -x"),
    (["-t", "soon", "n"], 'invalid argument "soon" for "-t, --time" flag'),
    (["--rm=maybe", "n"], 'invalid argument "maybe" for "--rm" flag'),
    (["n", "--name"], "flag needs an argument: --name"),
])
def test_flag_errors_exit_125_with_usage(argv, message):
    with pytest.raises(UsageError) as info:
        parse(argv)
    assert info.value.code == 125
    assert message in info.value.message
    assert "Usage:  dockyard thing [OPTIONS] NAME [NAME...]" in info.value.message


def test_argument_count_errors_exit_1_worded_like_docker():
    with pytest.raises(UsageError) as info:
        parse([])
    assert info.value.code == 1
    assert info.value.message.startswith("dockyard: 'dockyard thing' requires at least 1 argument")
    exact = Command("A B", "x", min_args=2, max_args=2)
    with pytest.raises(UsageError, match="requires 2 arguments"):
        exact.parse(["a"], "dockyard x")
    none = Command("", "x", max_args=0)
    with pytest.raises(UsageError, match="accepts no arguments"):
        none.parse(["a"], "dockyard x")


def test_help_flag_wins_over_missing_arguments():
    with pytest.raises(HelpRequested) as info:
        parse(["--help"])
    text = info.value.args[0]
    assert "Usage:  dockyard thing [OPTIONS] NAME [NAME...]" in text
    assert "-e, --env list" in text and "-t, --time int" in text


def test_run_h_is_hostname_not_help():
    opts, args = RUN.parse(["-h", "box", "img"], "dockyard run")
    assert opts.hostname == "box" and args == ["img"]
