"""Safe YAML loading that remembers where every value came from.

PyYAML's composer already knows each node's line and column; this keeps them. Mappings
load as `PosDict` and sequences as `PosList`, which carry the position of the collection
and of each key/item, so an error can say `file:line:col` for the exact bad value.
Only safe tags are constructed, and aliases are capped, in number and in how many values
they stand for, so a "billion laughs" document (a few dozen aliases of aliases) fails
fast instead of eating memory or time in whatever walks the data later.
libyaml parses when PyYAML has it; the pure-Python loader reads what libyaml would read
differently, and words every error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from opsfix.errors import InputError, Location

MAX_ALIASES = 200
MAX_EXPANDED = 100_000  # values all aliases together may stand for
MAX_FLOW_DEPTH = 100  # [ and { inside each other; PyYAML's scanner is quadratic in it
MAX_DEPTH = 100  # collections inside each other, block or flow
# A YAML file larger than this is refused before it is parsed: composing with positions
# costs about 100 bytes of memory and ~1 s of CPU per 100 KiB of YAML (measured loaded).
MAX_FILE_BYTES = 4 * 2**20


class PosDict(dict[Any, Any]):
    """A dict with `pos` (its own position) and `key_pos`/`value_pos` per key."""

    pos: tuple[int, int] = (0, 0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_pos: dict[Any, tuple[int, int]] = {}
        self.value_pos: dict[Any, tuple[int, int]] = {}


class PosList(list[Any]):
    """A list with `pos` and `item_pos` per index."""

    pos: tuple[int, int] = (0, 0)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.item_pos: list[tuple[int, int]] = []


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Guarded:
    """Composer hooks that count alias expansions (mixed into both loaders below)."""

    def _start_counting(self) -> None:
        self._aliases = 0
        self._expanded = 0
        self._sizes: dict[int, int] = {}
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        loader: Any = self
        if self._depth >= MAX_DEPTH:
            raise yaml.constructor.ConstructorError(
                None, None, f"nested more than {MAX_DEPTH} levels deep (refused)",
                loader.peek_event().start_mark,
            )  # fmt: skip
        self._depth += 1
        try:
            return self._compose_counted(parent, index)
        finally:
            self._depth -= 1

    def _compose_counted(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        loader: Any = self
        if loader.check_event(yaml.AliasEvent):
            self._aliases += 1
            event = loader.peek_event()
            if self._aliases > MAX_ALIASES:
                raise yaml.constructor.ConstructorError(
                    None, None, f"more than {MAX_ALIASES} aliases (refused)", event.start_mark
                )
            if event.anchor in loader.anchors:
                self._expanded += self._size(loader.anchors[event.anchor])
            if self._expanded > MAX_EXPANDED:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"aliases stand for more than {MAX_EXPANDED} values (refused)",
                    event.start_mark,
                )
        node: yaml.Node | None = super().compose_node(parent, index)  # type: ignore[misc]
        return node

    def _size(self, node: yaml.Node) -> int:
        """How many values `node` stands for once every alias inside it is expanded."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        self._sizes[id(node)] = 1  # a node that contains itself counts once
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._size(k) + self._size(v) for k, v in node.value)
        self._sizes[id(node)] = size
        return size


class _PosConstruction(yaml.constructor.SafeConstructor):
    """Builds PosDict/PosList (mixed into both loaders below)."""

    def construct_pos_mapping(self, node: yaml.MappingNode) -> PosDict:
        data = PosDict()
        data.pos = _mark(node)
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError as exc:
                raise yaml.constructor.ConstructorError(
                    None, None, "unhashable mapping key", key_node.start_mark
                ) from exc
            if key in data:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            data[key] = self.construct_object(value_node, deep=True)
            data.key_pos[key] = _mark(key_node)
            data.value_pos[key] = _mark(value_node)
        return data

    def construct_pos_sequence(self, node: yaml.SequenceNode) -> PosList:
        data = PosList(self.construct_object(child, deep=True) for child in node.value)
        data.pos = _mark(node)
        data.item_pos = [_mark(child) for child in node.value]
        return data


class _Loader(_Guarded, _PosConstruction, yaml.SafeLoader):
    """The pure-Python loader, with a limit on flow nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._start_counting()

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_FLOW_DEPTH:
            raise yaml.scanner.ScannerError(
                None,
                None,
                f"more than {MAX_FLOW_DEPTH} nested [ or {{ (refused)",
                self.get_mark(),
            )
        super().fetch_flow_collection_start(TokenClass)


def _positional(loader: Any) -> Any:
    """`loader`, made to build PosDict/PosList for mappings and sequences, and to decrypt
    Ansible's `!vault` values (opsfix.playbook.vault)."""
    loader.add_constructor("tag:yaml.org,2002:map", loader.construct_pos_mapping)
    loader.add_constructor("tag:yaml.org,2002:seq", loader.construct_pos_sequence)
    loader.add_constructor("!vault", _construct_vault)
    return loader


def _construct_vault(loader: Any, node: yaml.Node) -> Any:
    from opsfix.playbook import vault

    text = loader.construct_scalar(node)
    try:
        return vault.Secret(vault.decrypt(text).decode("utf-8", "replace"))
    except vault.VaultError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{VAULT_PROBLEM}{exc}", node.start_mark
        ) from None


VAULT_PROBLEM = "!vault value: "


_positional(_Loader)
_FAST: Any = None  # the libyaml loader, when PyYAML was built with libyaml


class _Unlike(yaml.YAMLError):
    """libyaml reads this document differently from the pure loader, which must read it."""


if yaml.__with_libyaml__:

    class _CLoader(_Guarded, _PosConstruction, yaml.composer.Composer, yaml.CSafeLoader):
        """libyaml scans and parses (about 8 times faster); composing stays in Python, so
        the guards apply and every node's position is the pure loader's.

        libyaml's own composer is recursive C, which a deep document crashes; here depth
        is a Python RecursionError, and flow nesting past the limit stops early, as
        libyaml's scanner is quadratic in it too. A scalar libyaml reads differently
        (`_is_unlike`) stops it, and the pure loader reads the whole document.
        """

        def __init__(self, stream: str) -> None:
            yaml.CSafeLoader.__init__(self, stream)
            yaml.composer.Composer.__init__(self)
            self._text = stream  # libyaml's marks index its characters
            self._start_counting()
            self._flow_depth = 0

        def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
            event: Any = self.peek_event()
            if not getattr(event, "flow_style", False):
                return super().compose_node(parent, index)
            if self._flow_depth >= MAX_FLOW_DEPTH:
                raise _Unlike("nested too deeply")
            self._flow_depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._flow_depth -= 1

        def compose_scalar_node(self, anchor: Any) -> yaml.ScalarNode:
            if self._is_unlike(self.peek_event()):
                raise _Unlike("read differently by libyaml")
            return super().compose_scalar_node(anchor)

        def _is_unlike(self, event: Any) -> bool:
            """A plain `?` in a flow collection (PyYAML refuses it), an empty tagged value,
            or an empty value not right after its `:` (libyaml puts it at the next token;
            PyYAML just after the indicator)."""
            if event.tag is not None and not event.value:
                return True
            if event.style:  # quoted or block scalar
                return False
            if not event.value:
                index = event.start_mark.index
                return index == 0 or self._text[index - 1] != ":"
            return bool(self._flow_depth) and "?" in event.value

    _FAST = _positional(_CLoader)


def _parse(text: str) -> Any:
    """The document's data, by libyaml when it can (much faster), else by the pure loader,
    which also reports every error, so that errors read exactly as they always have.
    A tab goes to the pure loader (PyYAML refuses tabs where libyaml accepts them), and so
    does U+FEFF, the byte order mark (libyaml's columns do not count it)."""
    if _FAST is not None and "\t" not in text and "\ufeff" not in text:
        try:
            return _construct(_FAST(text))
        except (yaml.YAMLError, RecursionError):
            pass
    return _construct(_Loader(text))


def _construct(loader: Any) -> Any:
    try:
        return loader.get_single_data()  # both loaders construct safe tags only
    finally:
        loader.dispose()


def loads(text: str, source: str, *, error: type[InputError] = InputError) -> Any:
    """Parse YAML text; a syntax error becomes `error` naming the source, line and column."""
    try:
        return _parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        where = Location(source, mark.line + 1, mark.column + 1) if mark else Location(source)
        said = problem if problem.startswith(VAULT_PROBLEM) else f"invalid YAML: {problem}"
        raise error(said, where) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL)
        where = Location(source, *_line_and_column(text, exc.position))
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise error(f"invalid YAML: {exc.reason} (character {char!r})", where) from None
    except yaml.YAMLError as exc:
        raise error(f"invalid YAML: {exc}", Location(source)) from None
    except RecursionError:
        raise error("invalid YAML: nested too deeply", Location(source)) from None


def _line_and_column(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def read_text(
    path: Path, *, error: type[InputError] = InputError, limit: int = MAX_FILE_BYTES
) -> str:
    """A UTF-8 file's text; too big, unreadable or not UTF-8 is `error` with its place."""
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except OSError as exc:
        raise error(f"cannot read: {exc.strerror or exc}", Location(str(path))) from None
    if len(data) > limit:
        size = f"{limit // 2**20} MiB" if limit >= 2**20 else f"{limit // 1024} KiB"
        raise error(
            f"file is larger than {size} (refused, nothing was parsed)", Location(str(path))
        )
    try:
        return _decrypted(data.decode("utf-8"), path, error)
    except UnicodeDecodeError as exc:
        head = data[: exc.start].decode("utf-8")
        where = Location(str(path), *_line_and_column(head, len(head)))
        raise error(f"not UTF-8 text: byte {data[exc.start]:#04x} (refused)", where) from None


def _decrypted(text: str, path: Path, error: type[InputError]) -> str:
    """A file that is one Ansible Vault envelope reads as its plaintext."""
    from opsfix.playbook import vault

    if not vault.is_encrypted(text):
        return text
    try:
        return vault.decrypt(text).decode("utf-8")
    except vault.VaultError as exc:
        raise error(f"encrypted file: {exc}", Location(str(path))) from None


def load(path: Path, *, error: type[InputError] = InputError, limit: int = MAX_FILE_BYTES) -> Any:
    """Read and parse a YAML file of at most `limit` bytes."""
    return loads(read_text(path, error=error, limit=limit), str(path), error=error)


def position(container: Any, key: Any) -> tuple[int | None, int | None]:
    """Best-known (line, column) of `container[key]`, or of the container itself."""
    if isinstance(container, PosDict):
        if key in container.value_pos:
            return container.value_pos[key]
        return container.pos
    if isinstance(container, PosList):
        if isinstance(key, int) and 0 <= key < len(container.item_pos):
            return container.item_pos[key]
        return container.pos
    return None, None


def key_position(container: Any, key: Any) -> tuple[int | None, int | None]:
    """(line, column) of a mapping's key, falling back to `position`."""
    if isinstance(container, PosDict) and key in container.key_pos:
        return container.key_pos[key]
    return position(container, key)
