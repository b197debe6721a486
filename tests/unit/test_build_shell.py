"""The Dockerfile shell lexer: moby's (buildkit's lex.go) expansions,
quoting, escapes, word splitting and error wording."""
import pytest

from dockyard.daemon.build.shell import ShellLex, go_quote
from dockyard.errors import BuildFailed

ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


@pytest.mark.parametrize("word,expected", [
    ("hello", "hello"),
    ("he'll'o", "hello"),
    ("he\\'llo", "he'llo"),
    ("abc\\tdef", "abctdef"),               # outside quotes the escape just escapes
    ('"abc\\tdef"', "abc\\tdef"),           # inside "" it escapes only " $ and itself
    ('"abc\\\\tdef"', "abc\\tdef"),
    ("'abc\\tdef'", "abc\\tdef"),
    ("hello\\", "hello"),                    # a trailing escape is dropped
    ("hello\\\\", "hello\\"),
    ("'hello\\'", "hello\\"),
    ('"hel\'lo"', "hel'lo"),
    ("$.", "$."),
    ("he$1x", "hex"),                        # positional parameters are never set
    ("he$pwd.", "he."),                      # names are case-sensitive
    ("he$PWD", "he/home"),
    ("he\\$PWD", "he$PWD"),
    ("he\\\\$PWD", "he\\/home"),
    ('"he\\$PWD"', "he$PWD"),
    ("\\${}aaa", "${}aaa"),
    ("he${hi}xx", "hexx"),
    ("he${XXX:-000}xx", "he000xx"),
    ("he${PWD:-000}xx", "he/homexx"),
    ("he${XXX:-${PWD:-yyy}}xx", "he/homexx"),
    ("he${XXX:-${YYY:-yyy}}xx", "heyyyxx"),
    ("he${NULL:-x}", "hex"),
    ("he${NULL-x}", "he"),                   # without ':' only unset counts
    ("he${PWD?}", "he/home"),
    ("he${NULL?}", "he"),
    ("he${XXX:+000}xx", "hexx"),
    ("he${PWD:+000}xx", "he000xx"),
    ("he${NULL+set}", "heset"),
    ("he${NULL:+set}", "he"),
    ("he${PWD:+${SHELL}}xx", "hebashxx"),
    ("'he${XX}'", "he${XX}"),
    ('"he\'$PWD\'"', "he'/home'"),
    ("he${PWD:+${PWD}:}xx", "he/home:xx"),
    ("he${XXX:-\\${PWD}z}xx", "he${PWDz}xx"),
    ("안녕$KOREAN", "안녕한국어"),
    ("${aaa}}", "}"),
    ("${aaa:-bbb {foo}", "bbb {foo"),
    ("${999:-bbb}aaa", "bbbaaa"),
    ("$@@@", "@@"),
    ("${$:-bbb}", "bbb"),
    ("a <<EOF", "a <<EOF"),
])
def test_process_word(word, expected):
    assert ShellLex().process_word(word, ENV) == expected


@pytest.mark.parametrize("word,env,expected", [
    ("${FOO#x}", {"FOO": "xxyy"}, "xyy"),
    ("${FOO##x*}", {"FOO": "xxyy"}, ""),
    ("${FOO#*x}", {"FOO": "xxyy"}, "xyy"),
    ("${FOO%y}", {"FOO": "xxyy"}, "xxy"),
    ("${FOO%y*}", {"FOO": "xxyy"}, "xxy"),
    ("${FOO%%y*}", {"FOO": "xxyy"}, "xx"),
    ("${FOO%%*}", {"FOO": "a***yy*"}, ""),
    ("${FOO#???}", {"FOO": "???y"}, "y"),
    ("${FOO#\\?\\?}", {"FOO": "???y"}, "?y"),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy"),
    ("${FOO/x/z}", {"FOO": "xxyy"}, "zxyy"),
    ("${FOO//x/z}", {"FOO": "xxyy"}, "zzyy"),
    ("${FOO//\\*/-}", {"FOO": "a**b"}, "a--b"),
    ("${FOO/$NEEDLE/$REPLACEMENT}", {"FOO": "http://google.de", "NEEDLE": "http://",
                                      "REPLACEMENT": "https://"}, "https://google.de"),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt"),
    ("${UNSET/x/y}", {}, ""),
])
def test_trims_and_replacements(word, env, expected):
    assert ShellLex().process_word(word, env) == expected


@pytest.mark.parametrize("word,message", [
    ("${x", 'failed to process "${x": unsupported modifier (\ufffd) in substitution'),
    ("he${PWD:-000", "failed to process \"he${PWD:-000\": syntax error: missing '}'"),
    ("${", "failed to process \"${\": syntax error: missing '}'"),
    ("${}", 'failed to process "${}": syntax error: bad substitution'),
    ("${:-bbb}", 'failed to process "${:-bbb}": syntax error: bad substitution'),
    ("${{aaa}", 'failed to process "${{aaa}": syntax error: bad substitution'),
    ("he${.}", 'failed to process "he${.}": unsupported modifier (.) in substitution'),
    ("${XXX:YYY}", 'failed to process "${XXX:YYY}": unsupported modifier (:Y) in substitution'),
    ("${PWD:=000}", 'failed to process "${PWD:=000}": unsupported modifier (:=) in substitution'),
    ("${FOO=aaa}", 'failed to process "${FOO=aaa}": unsupported modifier (=) in substitution'),
    ("${PWD:%x}", 'failed to process "${PWD:%x}": unsupported modifier (:%) in substitution'),
    ("${XXX?}", 'failed to process "${XXX?}": XXX: is not allowed to be unset'),
    ("${NULL:?}", 'failed to process "${NULL:?}": NULL: is not allowed to be empty'),
    ("${XXX:?need $SHELL}", 'failed to process "${XXX:?need $SHELL}": XXX: need bash'),
    ("he'llo", "failed to process \"he'llo\": unexpected end of statement while looking "
               "for matching single-quote"),
    ('"hello\\"', 'failed to process "\\"hello\\\\\\"": unexpected end of statement while '
                  'looking for matching double-quote'),
    ("${a/x", "failed to process \"${a/x\": syntax error: missing '/' in ${}"),
    ("${a/x/y", "failed to process \"${a/x/y\": syntax error: missing '}'"),
    ("${PWD#\\x}", "failed to process \"${PWD#\\\\x}\": invalid pattern (\\x) in substitution: "
                   "invalid escape '\\x'"),
])
def test_errors_have_mobys_words(word, message):
    with pytest.raises(BuildFailed) as e:
        ShellLex().process_word(word, ENV)
    assert e.value.message == message


@pytest.mark.parametrize("word,env,expected", [
    ("hello", {}, ["hello"]),
    ("hello there     ", {}, ["hello", "there"]),
    ("hello\\ there", {}, ["hello there"]),
    ('hello" there  "', {}, ["hello there  "]),
    ('hello\\" there', {}, ['hello"', "there"]),
    ("hello${space}bye", {"space": "abc  def"}, ["helloabc", "defbye"]),
    ('hello"${space}"bye', {"space": "abc  def"}, ["helloabc  defbye"]),
    ("hello${leading}def", {"leading": "  ab c"}, ["hello", "ab", "cdef"]),
    ("hello${trailing}d", {"trailing": "ab c   "}, ["helloab", "c", "d"]),
    ("hel\"lo${trailing}\"", {"trailing": "ab c   "}, ["helloab c   "]),
    ("$PORTS", {"PORTS": "80/tcp 443"}, ["80/tcp", "443"]),
    ("8${X:-0} 9", {}, ["80", "9"]),
    ("hello'$there'", {}, ["hello$there"]),
    ("", {}, []),
])
def test_process_words(word, env, expected):
    assert ShellLex().process_words(word, env) == expected


def test_backtick_escape():
    lx = ShellLex("`")
    assert lx.process_word('C:\\dir`$x "a`"b" ``', {"x": "1"}) == 'C:\\dir$x a"b `'
    assert lx.process_word("\\$x", {"x": "1"}) == "\\1"
    assert lx.process_words("a` b c", {}) == ["a b", "c"]


def test_go_quote():
    assert go_quote('a"b\\c\n\t') == '"a\\"b\\\\c\\n\\t"'
    assert go_quote("안녕\x01\x7f") == '"안녕\\x01\\x7f"'
