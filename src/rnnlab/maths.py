"""Formulas in text: one source, two renderers.

Text that rnnlab shows (the report's argument, captions, a verdict's evidence) writes its
formulas between dollar signs in a small LaTeX subset, e.g. "$0.8^{50} \\approx 1.43e{-5}$".
`plain(text)` renders them as Unicode for a terminal (0.8^50 ≈ 1.43e−5); `html(text)`
escapes the prose and renders them as MathML, which browsers draw natively, so a page
stays one offline file. Both read the same source, so the two cannot disagree.

The subset: letters and numbers; _ and ^ with one token or a {group}; \\frac{a}{b};
\\| for ‖; \\operatorname{name} and \\text{words}; and the macros in SYMBOLS.
"""

from __future__ import annotations

import re
from html import escape

SYMBOLS = {
    "partial": "∂", "prod": "Π", "sum": "Σ", "phi": "φ", "sigma": "σ", "gamma": "γ",
    "tau": "τ", "delta": "δ", "lambda": "λ", "rho": "ρ", "theta": "θ", "odot": "⊙",
    "le": "≤", "ge": "≥",
    "approx": "≈", "times": "×", "cdot": "·", "to": "→", "top": "ᵀ", "infty": "∞",
    "ldots": "…", "max": "max", "min": "min", "tanh": "tanh", "log": "log", "exp": "exp",
    "ln": "ln", "quad": " ", ",": " ", "prime": "′", "neq": "≠", "in": "∈", "mid": "|",
}  # fmt: skip
_FORMULA = re.compile(r"\$([^$]+)\$")
_TOKEN = re.compile(r"\\([a-zA-Z]+|[,|{}])|([{}_^])|(\s+)|([^\\{}_^\s])")


def plain(text: str) -> str:
    """`text` with each $formula$ rendered as Unicode (for terminals and alt text)."""
    return _FORMULA.sub(lambda m: _unicode(m.group(1)), text)


def html(text: str) -> str:
    """`text` as HTML: the prose escaped, each $formula$ as inline MathML."""
    from latex2mathml.converter import convert

    parts = []
    last = 0
    for m in _FORMULA.finditer(text):
        parts.append(escape(text[last : m.start()]))
        parts.append(convert(_for_mathml(m.group(1))))
        last = m.end()
    parts.append(escape(text[last:]))
    return "".join(parts)


def _for_mathml(tex: str) -> str:
    """Unicode minus signs and primes as LaTeX, which latex2mathml reads."""
    return tex.replace("−", "-").replace("′", "'")


def _unicode(tex: str) -> str:
    out, _ = _render(_tokens(tex), 0, depth=0)
    return re.sub(r"\s+", " ", out).strip()


def _tokens(tex: str) -> list[str]:
    tokens = []
    for macro, mark, space, char in _TOKEN.findall(tex):
        if macro:
            tokens.append("\\" + macro)
        elif mark:
            tokens.append(mark)
        elif not space:  # LaTeX ignores spaces in formulas; \, and \quad make them
            tokens.append(char)
    return tokens


RELATIONS = set("=≤≥≈→≠∈+−<>")
BIG = {"\\prod", "\\sum"}


def _render(tokens: list[str], i: int, stop: str | None = None, depth: int = 1) -> tuple[str, int]:
    """Render tokens from i until `stop` ("}") or the end; return (text, next index).
    At depth 0 (the formula itself, not a script or group) relations get spaces."""
    out: list[str] = []
    while i < len(tokens):
        tok = tokens[i]
        if tok == stop:
            return "".join(out), i + 1
        if tok in BIG and tokens[i + 1 : i + 2] == ["_"]:  # Π_{j=k+1}^{T}: Π_(j=k+1..T)
            low, i = _argument(tokens, i + 2)
            high = ""
            if tokens[i : i + 1] == ["^"]:
                high, i = _argument(tokens, i + 1)
            out.append(
                f"{_symbol(tok)}_({low}..{high}) " if high else f"{_symbol(tok)}_{_script(low)} "
            )
            continue
        if tok in ("_", "^"):
            arg, i = _argument(tokens, i + 1)
            out.append(tok + _script(arg))
            continue
        if tok == "\\frac":
            num, i = _argument(tokens, i + 1)
            den, i = _argument(tokens, i)
            out.append(
                f"{_wrap(num)} / {_wrap(den)}" if depth == 0 else f"{_wrap(num)}/{_wrap(den)}"
            )
            continue
        if tok in ("\\operatorname", "\\text", "\\mathrm"):
            arg, i = _argument(tokens, i + 1)
            out.append(arg)
            continue
        if tok == "{":
            group, i = _render(tokens, i + 1, "}")
            out.append(group)
            continue
        symbol = _symbol(tok)
        out.append(f" {symbol} " if depth == 0 and symbol in RELATIONS else symbol)
        i += 1
    return "".join(out), i


def _argument(tokens: list[str], i: int) -> tuple[str, int]:
    """One token or a {group} after _, ^ or \\frac."""
    if i >= len(tokens):
        return "", i
    if tokens[i] == "{":
        return _render(tokens, i + 1, "}")
    return _render(tokens[i : i + 1], 0)[0], i + 1


def _script(arg: str) -> str:
    """A sub- or superscript: bare when it is one name or number, else in parentheses."""
    return arg if re.fullmatch(r"[\w.′]+", arg) else f"({arg})"


def _symbol(tok: str) -> str:
    if tok == "\\|":
        return "‖"
    if tok in ("\\{", "\\}"):
        return tok[1]
    if tok.startswith("\\"):
        return SYMBOLS.get(tok[1:], tok[1:])
    return {"-": "−", "'": "′"}.get(tok, tok)


def _wrap(part: str) -> str:
    """Parenthesise a fraction's part when it is a sum or a relation."""
    bare = re.sub(r"‖[^‖]*‖|\([^()]*\)", "", part)
    return f"({part})" if any(c in bare for c in "+−= ") else part
