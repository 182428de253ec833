"""Prompt algebra: a text prompt may be an expression over prompts.

    "a cat | a dog"             union          max(a, b)
    "a cat & something furry"   intersection   min(a, b)
    "a person - a hat"          difference     min(a, 1 - b)
    "(a cat | a dog) - a ball"  parentheses group

An operator is `|`, `&` or `-` with a space on each side, so "t-shirt" and "black&white"
stay plain prompts. A chain of one operator reads left to right; different operators at
one level need parentheses (no precedence to remember): "a | b - c" is refused, write
"(a | b) - c". A term in double quotes is taken literally ("\"rock | roll\"" is the plain
prompt `rock | roll`); in an expression, a term's parentheses must be quoted to be kept:
"\"a cat (black)\" | a dog".

The maps are combined on probabilities (or logits, the same algebra since the sigmoid is
monotone: max, min, min(a, -b)). Every term of every prompt of a request is decoded once,
in the one batched decoder pass (`PromptPlan.terms`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .types import MixedPrompt, Prompt, PromptError, describe

OPERATORS = {"|": "union", "&": "intersection", "-": "difference"}
_SPACED_OPERATOR = re.compile(r"\s[|&-]\s")


class ExpressionError(PromptError):
    """A prompt expression cannot be read (the message quotes it and says where)."""


@dataclass(frozen=True, eq=False)
class Expression:
    """op applied to two operands (prompts or expressions)."""

    op: str
    left: "Node"
    right: "Node"


Node = Prompt | Expression


def _split(text: str) -> list[str]:
    """The text's chunks between operators, and the operators: [chunk, op, chunk, op, ...].
    Operators inside double quotes do not count."""
    parts, start, quoted = [], 0, False
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif (not quoted and c in OPERATORS and 0 < i < len(text) - 1
              and text[i - 1].isspace() and text[i + 1].isspace()):
            parts += [text[start:i], c]
            start = i + 1
    if quoted:
        raise ExpressionError(f"unbalanced double quote in the prompt {text!r}")
    return parts + [text[start:]]


def _literal(chunk: str, text: str) -> str:
    """A term's text: the inside of a quoted term, or the chunk itself."""
    if chunk.count('"') == 0:
        return chunk
    if len(chunk) >= 2 and chunk[0] == chunk[-1] == '"' and chunk.count('"') == 2:
        if not chunk[1:-1].strip():
            raise ExpressionError(f"empty quoted term in {text!r}")
        return chunk[1:-1]
    raise ExpressionError(f"in {text!r}: double quotes must enclose a whole term ({chunk!r})")


def _tokens(text: str, parts: list[str]) -> list[tuple[str, str]]:
    """[(kind, value)]: kind 'term', 'op', '(' or ')'."""
    tokens: list[tuple[str, str]] = []
    for i, part in enumerate(parts):
        if i % 2:
            tokens.append(("op", part))
            continue
        chunk = part.strip()
        opens = closes = 0
        while chunk.startswith("("):
            opens, chunk = opens + 1, chunk[1:].strip()
        while chunk.endswith(")"):
            closes, chunk = closes + 1, chunk[:-1].strip()
        if not chunk:
            raise ExpressionError(f"empty term in the prompt expression {text!r}")
        tokens += [("(", "(")] * opens + [("term", _literal(chunk, text))] + [(")", ")")] * closes
    return tokens


def parse(text: str) -> Node:
    """A prompt's text -> the plain prompt (str) or an Expression over plain prompts.
    ExpressionError names the problem: unbalanced parentheses or quotes, an empty term, mixed
    operators without parentheses."""
    parts = _split(text) if _SPACED_OPERATOR.search(text) else [text]
    if len(parts) == 1:  # no operator: a plain prompt, verbatim unless wholly quoted
        s = text.strip()
        if len(s) >= 2 and s[0] == s[-1] == '"' and s.count('"') == 2:
            return _literal(s, text)
        return text
    tokens = _tokens(text, parts)
    pos = 0

    def operand() -> Node:
        nonlocal pos
        kind, value = tokens[pos]
        pos += 1
        if kind == "term":
            return value
        if kind == "(":
            node = chain()
            if pos >= len(tokens) or tokens[pos][0] != ")":
                raise ExpressionError(f"unbalanced '(' in the prompt expression {text!r}")
            pos += 1
            return node
        raise ExpressionError(f"unexpected {value!r} in the prompt expression {text!r}")

    def chain() -> Node:
        nonlocal pos
        node = operand()
        op = None
        while pos < len(tokens) and tokens[pos][0] == "op":
            this = tokens[pos][1]
            if op is not None and this != op:
                raise ExpressionError(f"the prompt expression {text!r} mixes '{op}' and '{this}' at one level: "
                                      "add parentheses, e.g. (a | b) - c")
            op, pos = this, pos + 1
            node = Expression(this, node, operand())
        return node

    node = chain()
    if pos != len(tokens):
        raise ExpressionError(f"unbalanced ')' in the prompt expression {text!r} (quote a term to keep its "
                              'parentheses: "a cat (black)")')
    return node


def leaves(node: Node) -> Iterator[Prompt]:
    if isinstance(node, Expression):
        yield from leaves(node.left)
        yield from leaves(node.right)
    else:
        yield node


def render(node: Node, leaf: Callable[[Prompt], str] = describe) -> str:
    """An expression's canonical text (parentheses where the reading needs them); leaves by `leaf`."""
    if not isinstance(node, Expression):
        text = leaf(node)
        stripped = text.strip()
        reads_back = not (_SPACED_OPERATOR.search(text) or stripped.startswith(("(", '"')) or stripped.endswith(")"))
        return text if reads_back or not isinstance(node, str) else f'"{text}"'  # a text term that needs quotes
    left = render(node.left, leaf)
    if isinstance(node.left, Expression) and node.left.op != node.op:
        left = f"({left})"
    right = render(node.right, leaf)
    if isinstance(node.right, Expression):
        right = f"({right})"
    return f"{left} {node.op} {right}"


def _term_key(prompt: Prompt) -> object:
    return ("text", prompt) if isinstance(prompt, str) else ("object", id(prompt))


@dataclass
class PromptPlan:
    """What a request asks (one output per prompt, each a prompt or an expression) and what the
    decoder must run for it (`terms`, each prompt once)."""

    outputs: list[Node]
    names: list[str]
    terms: list[Prompt] = field(default_factory=list)
    _index: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for node in self.outputs:
            for p in leaves(node):
                if _term_key(p) not in self._index:
                    self._index[_term_key(p)] = len(self.terms)
                    self.terms.append(p)

    @property
    def has_expressions(self) -> bool:
        return any(isinstance(n, Expression) for n in self.outputs)

    def evaluate(self, k: int, term_map: Callable[[int], Any], algebra: "MapAlgebra") -> Any:
        """Output k from its terms' maps; `term_map(i)` must return a new array each call (the
        algebra may work in place)."""

        def value(node: Node):
            if not isinstance(node, Expression):
                return term_map(self._index[_term_key(node)])
            a, b = value(node.left), value(node.right)
            if node.op == "|":
                return algebra.maximum(a, b)
            if node.op == "&":
                return algebra.minimum(a, b)
            return algebra.minimum(a, algebra.complement(b))

        return value(self.outputs[k])

    def maps(self, term_map: Callable[[int], Any], algebra: "MapAlgebra | None" = None) -> Iterator[Any]:
        """One map per output, made one at a time (numpy probabilities unless `algebra` says otherwise)."""
        for k in range(len(self.outputs)):
            yield self.evaluate(k, term_map, algebra or NUMPY_PROBABILITIES)


@dataclass(frozen=True)
class MapAlgebra:
    """The three operations on maps of one kind (each may reuse its first argument's memory)."""

    complement: Callable[[Any], Any]
    maximum: Callable[[Any, Any], Any]
    minimum: Callable[[Any, Any], Any]


NUMPY_PROBABILITIES = MapAlgebra(
    complement=lambda b: np.subtract(1.0, b, out=b),
    maximum=lambda a, b: np.maximum(a, b, out=a),
    minimum=lambda a, b: np.minimum(a, b, out=a),
)


def plan_prompts(prompts: Sequence[Prompt], names: Sequence[str] | None = None, negative: Sequence[str] = (),
                 max_terms: int | None = None) -> PromptPlan:
    """Parse text prompts (expressions allowed), subtract the negative prompts from every one
    ((p) - (n1 | n2 | ...), the txt2mask shorthand), and list the terms to decode once.
    names: what each prompt is called in outputs (default `describe`); an expression is named by
    its canonical text."""
    names = list(names) if names is not None else [describe(p) for p in prompts]
    outputs, out_names = [], []
    neg_node: Node | None = None
    for n in negative:
        if not isinstance(n, str) or not n.strip():
            raise ExpressionError("a negative prompt must be non-empty text")
        node = parse(n)
        neg_node = node if neg_node is None else Expression("|", neg_node, node)
    own = {id(p): name for p, name in zip(prompts, names)}

    def leaf_name(p: Prompt) -> str:
        return own.get(id(p), describe(p))

    for p, name in zip(prompts, names):
        node = parse(p) if isinstance(p, str) else p
        if isinstance(p, MixedPrompt) and isinstance(parse(p.text), Expression):
            raise ExpressionError(f"the prompt {p.text!r} is an expression: a text weight mixes a visual prompt "
                                  "into plain text prompts only")
        if neg_node is not None:
            node = Expression("-", node, neg_node)
        outputs.append(node)
        out_names.append(render(node, leaf_name) if isinstance(node, Expression) else
                         (node if isinstance(p, str) else name))
    plan = PromptPlan(outputs, out_names)
    if max_terms is not None and len(plan.terms) > max_terms:
        raise PromptError(f"{len(plan.terms)} prompt terms to decode, more than the {max_terms} allowed")
    return plan


def as_plan(prompts, negative: Sequence[str] = ()) -> PromptPlan:
    """What a predictor's `predict` takes, as a plan: a PromptPlan as it is, else a prompt or a
    sequence of prompts through `plan_prompts` (one rule for Predictor and OnnxPredictor)."""
    from .conditions import prompt_list

    if isinstance(prompts, PromptPlan):
        return prompts
    return plan_prompts(prompt_list(prompts), negative=negative)


def text_terms(texts: Sequence[str]) -> list[str]:
    """The plain text prompts inside `texts` (expressions split into their terms), for
    vocabulary checks; a text that cannot be read is skipped (`parse` names its problem)."""
    terms: list[str] = []
    for t in texts:
        try:
            terms += [p for p in leaves(parse(t)) if isinstance(p, str)]
        except ExpressionError:
            pass
    return list(dict.fromkeys(terms))
