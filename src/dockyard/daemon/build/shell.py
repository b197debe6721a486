"""moby's Dockerfile shell lexer (buildkit frontend/dockerfile/shell/lex.go,
which the classic builder uses for every instruction that expands
variables): quotes, the escape character, `$v`, `${v}`, `${v:-x}`,
`${v-x}`, `${v:+x}`, `${v+x}`, `${v:?msg}`, `${v?msg}`, `${v#pat}`,
`${v##pat}`, `${v%pat}`, `${v%%pat}`, `${v/pat/repl}`, `${v//pat/repl}`.

This is not a shell: nothing is executed, an unset variable is "", and
positional and special parameters ($1, $@, $$ ...) are names that are never
set. Errors carry moby's words, wrapped as moby wraps them:
`failed to process "<word>": <reason>`.

One deliberate difference: buildkit shares one words buffer between the
outer word and a nested `${v:-...}`, so ProcessWords("a${x:-b}") there
loses the "a" (a bug only EXPOSE could show); here words are split as
documented ("ab").
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from ...errors import BuildFailed

_EOF = ""          # what peek()/next() give past the end (text/scanner's EOF)
_GO_EOF_TEXT = "\ufffd"   # Go's string(scanner.EOF), as it shows in "unsupported modifier (...)"
_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class _SyntaxError(Exception):
    """A reason, wrapped into BuildFailed with the word once at the top."""


def go_quote(s: str) -> str:
    """Go's %q of a string (strconv.Quote): what moby's messages quote with."""
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif o < 0x80:
            out.append(f"\\x{o:02x}")
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _is_space(ch: str) -> bool:
    """Go's unicode.IsSpace."""
    if ch in "\t\n\v\f\r \x85\xa0":
        return True
    return ord(ch) > 0xFF and ch.isspace()


def _is_letter(ch: str) -> bool:
    return ch.isalpha()


def _is_digit(ch: str) -> bool:
    return ch.isdecimal()


class _Words:
    """Word splitting as the lexer goes: unquoted whitespace that came from
    the word itself or from a `$` expansion ends a word; quoted text and
    escaped characters never do."""

    __slots__ = ("buf", "words", "in_word")

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if _is_space(ch):
            if self.in_word and self.buf:
                self.words.append("".join(self.buf))
                self.buf.clear()
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.buf.append(ch)
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def add_raw_string(self, s: str) -> None:
        self.buf.append(s)
        self.in_word = True

    def get_words(self) -> list[str]:
        if self.buf:
            self.words.append("".join(self.buf))
            self.buf.clear()
            self.in_word = False
        return self.words


class _Scanner:
    __slots__ = ("s", "pos")

    def __init__(self, s: str):
        self.s = s
        self.pos = 0

    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else _EOF

    def next(self) -> str:
        if self.pos < len(self.s):
            ch = self.s[self.pos]
            self.pos += 1
            return ch
        return _EOF


class _ShellWord:
    def __init__(self, word: str, env: Mapping[str, str], escape: str):
        self.sc = _Scanner(word)
        self.env = env
        self.escape = escape
        self.raw_escapes = False

    # ------------------------------------------------------------ the word

    def process_stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        saved, self.raw_escapes = self.raw_escapes, raw_escapes
        try:
            sc = self.sc
            while sc.peek() != _EOF:
                ch = sc.peek()
                if stop != _EOF and ch == stop:
                    sc.next()
                    return "".join(result), words.get_words()
                if ch == "$":
                    tmp = self.process_dollar()
                    result.append(tmp)
                    words.add_string(tmp)
                elif ch in ("'", '"', "<"):
                    if ch == "'":
                        tmp = self.process_single_quote()
                    elif ch == '"':
                        tmp = self.process_double_quote()
                    else:
                        tmp = self.process_possible_heredoc()
                    result.append(tmp)
                    words.add_raw_string(tmp)
                else:
                    ch = sc.next()
                    if ch == self.escape:
                        if self.raw_escapes:
                            words.add_raw_char(ch)
                            result.append(ch)
                        # the escape escapes the next character; at the end it is dropped
                        ch = sc.next()
                        if ch == _EOF:
                            break
                        words.add_raw_char(ch)
                    else:
                        words.add_char(ch)
                    result.append(ch)
            if stop != _EOF:
                raise _SyntaxError(f"unexpected end of statement while looking for matching {stop}")
            return "".join(result), words.get_words()
        finally:
            self.raw_escapes = saved

    def process_single_quote(self) -> str:
        # everything up to the next ' as is; a ' cannot be escaped inside
        sc = self.sc
        sc.next()
        out: list[str] = []
        while True:
            ch = sc.next()
            if ch == _EOF:
                raise _SyntaxError("unexpected end of statement while looking for matching single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def process_double_quote(self) -> str:
        # as is up to the next ", except $ expansions; the escape char escapes
        # only " $ and itself (other escapes stay literal)
        sc = self.sc
        sc.next()
        out: list[str] = []
        while True:
            ch = sc.peek()
            if ch == _EOF:
                raise _SyntaxError("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                sc.next()
                return "".join(out)
            if ch == "$":
                out.append(self.process_dollar())
                continue
            ch = sc.next()
            if ch == self.escape:
                if self.raw_escapes:
                    out.append(ch)
                nxt = sc.peek()
                if nxt == _EOF:
                    continue            # an escape at the very end is dropped
                if nxt in ('"', "$", self.escape):
                    ch = sc.next()
            out.append(ch)

    def process_possible_heredoc(self) -> str:
        sc = self.sc
        sc.next()
        if sc.peek() != "<":
            return "<"
        sc.next()
        space: list[str] = []
        while sc.peek() in ("\t", "\r", " "):
            space.append(sc.next())
        return "<<" + "".join(space)

    # ------------------------------------------------------------ $...

    def process_dollar(self) -> str:
        sc = self.sc
        sc.next()
        if sc.peek() != "{":
            name = self.process_name()
            if not name:
                return "$"
            return self.env.get(name, "")

        sc.next()
        first = sc.peek()
        if first == _EOF:
            raise _SyntaxError("syntax error: missing '}'")
        if first in ("{", "}", ":"):
            raise _SyntaxError("syntax error: bad substitution")
        name = self.process_name()
        ch = sc.next()
        chs = ch or _GO_EOF_TEXT
        null_is_unset = False

        if ch == "}":
            return self.env.get(name, "")
        if ch == "/":
            return self._replace(name)
        if ch == ":":
            null_is_unset = True
            ch = sc.next()
            chs += ch or _GO_EOF_TEXT
        elif ch not in ("+", "-", "?", "#", "%"):
            raise _SyntaxError(f"unsupported modifier ({chs}) in substitution")

        raw = ch in ("#", "%")
        if null_is_unset and raw:
            raise _SyntaxError(f"unsupported modifier ({chs}) in substitution")
        try:
            word, _ = self.process_stop_on("}", raw)
        except _SyntaxError:
            if sc.peek() == _EOF:
                raise _SyntaxError("syntax error: missing '}'") from None
            raise
        value = self.env.get(name)
        is_set = value is not None
        value = value or ""
        empty = not is_set or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if not is_set:
                raise _SyntaxError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _SyntaxError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        if ch in ("%", "#"):
            # %/# strip the shortest match, %%/## the longest
            greedy = False
            if word and word[0] == ch:
                greedy = True
                word = word[1:]
            if ch == "%":
                return _trim_suffix(word, value, greedy)
            return _trim_prefix(word, value, greedy)
        raise _SyntaxError(f"unsupported modifier ({chs}) in substitution")

    def _replace(self, name: str) -> str:
        sc = self.sc
        replace_all = sc.peek() == "/"
        if replace_all:
            sc.next()
        try:
            pattern, _ = self.process_stop_on("/", True)
        except _SyntaxError:
            if sc.peek() == _EOF:
                raise _SyntaxError("syntax error: missing '/' in ${}") from None
            raise
        try:
            replacement, _ = self.process_stop_on("}", True)
        except _SyntaxError:
            if sc.peek() == _EOF:
                raise _SyntaxError("syntax error: missing '}'") from None
            raise
        value = self.env.get(name, "")
        try:
            rx = _shell_pattern_regex(pattern, greedy=True, anchored=False)
        except _SyntaxError as e:
            raise _SyntaxError(f"invalid pattern ({pattern}) in substitution: {e}") from None
        if replace_all:
            return rx.sub(lambda _m: replacement, value)
        m = rx.search(value)
        if m:
            value = value[:m.start()] + replacement + value[m.end():]
        return value

    def process_name(self) -> str:
        """A name: letters, digits, _; a leading digit reads only digits
        (a positional parameter), a special parameter is one character."""
        sc = self.sc
        out: list[str] = []
        while sc.peek() != _EOF:
            ch = sc.peek()
            if not out and _is_digit(ch):
                while sc.peek() != _EOF and _is_digit(sc.peek()):
                    out.append(sc.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return sc.next()
            if not (_is_letter(ch) or _is_digit(ch) or ch == "_"):
                break
            out.append(sc.next())
        return "".join(out)


# ---------------------------------------------------------------- patterns

_REGEX_SPECIALS = frozenset("[]{}.+()|^$")


def _shell_pattern_regex(pattern: str, greedy: bool, anchored: bool) -> re.Pattern:
    """buildkit's convertShellPatternToRegex: `?` one char, `*` the
    shortest (or, greedy, the longest) string, `\\` escapes * ? \\ (and is
    dropped before } and /); no bracket expressions."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i, n = 0, len(pattern)
    while i < n:
        tok = pattern[i]
        i += 1
        if tok == "*":
            out.append(star)
            continue
        if tok == "?":
            out.append(".")
            continue
        if tok == "\\":
            tok = pattern[i] if i < n else ""
            if tok in ("}", "/") and tok:
                continue
            i += 1
            if tok not in ("*", "?", "\\"):
                shown = tok if tok else _GO_EOF_TEXT
                raise _SyntaxError(f"invalid escape '\\{shown}'")
            out.append("\\" + tok)
            continue
        out.append("\\" + tok if tok in _REGEX_SPECIALS else tok)
    return re.compile("".join(out))


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    try:
        rx = _shell_pattern_regex(pattern, greedy, anchored=True)
    except _SyntaxError as e:
        raise _SyntaxError(f"invalid pattern ({pattern}) in substitution: {e}") from None
    m = rx.search(value)
    return value[m.end():] if m else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse, keeping each escape before the character it escapes."""
    chars = list(pattern)
    last = len(chars) - 1
    out = [""] * len(chars)
    i = 0
    while i <= last:
        tok = chars[i]
        j = last - i
        if tok == "\\" and i != last:
            out[j - 1] = tok
            out[j] = chars[i + 1]
            i += 2
        else:
            out[j] = tok
            i += 1
    return "".join(out)


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # the shortest rightmost match is the shortest leftmost one of the reversed strings
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


# ---------------------------------------------------------------- the API

class ShellLex:
    """moby's shell.Lex with its escape token (`\\`, or `` ` `` after an
    `# escape=`` ` `` directive)."""

    def __init__(self, escape: str = "\\"):
        if len(escape) != 1:
            raise ValueError("escape must be one character")
        self.escape = escape

    def _run(self, word: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
        sw = _ShellWord(word, env, self.escape)
        try:
            return sw.process_stop_on(_EOF, False)
        except _SyntaxError as e:
            raise BuildFailed(f"failed to process {go_quote(word)}: {e}") from None

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """`word` with quotes removed and variables expanded (ProcessWord)."""
        return self._run(word, env)[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """`word` expanded and split on unquoted whitespace, including
        whitespace that came from a variable's value (ProcessWords, which
        EXPOSE uses: `EXPOSE $PORTS` with PORTS="80 443" is two ports)."""
        return self._run(word, env)[1]
