"""The analysts' catalog: `infra/clickhouse/queries/*.sql`, each a documented question.

A query file starts with comment lines: the first is its title, then what it answers, then
`-- param NAME TYPE: what it is` for each parameter and `-- column NAME: what it means` for
each column it returns, in order (`binhyen query NAME --describe` prints them). Parameters live in the query's WITH
clause as literals marked `-- param NAME`, so the file runs unchanged in clickhouse-client
with its defaults; `binhyen query NAME --param NAME=VALUE` swaps in checked values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from streams.config import INFRA_DIR, ConfigError

QUERY_DIR = INFRA_DIR / "clickhouse" / "queries"
_PARAM_DOC = re.compile(r"^--\s*param\s+(?P<name>\w+)\s+(?P<type>Date|Int|String)\s*:\s*(?P<doc>.*)$")
_COLUMN_DOC = re.compile(r"^--\s*column\s+(?P<name>\w+)\s*:\s*(?P<doc>.*)$")
_PARAM_LINE = re.compile(r"^(?P<head>.*?)(?P<literal>'[^']*'|-?\d+)(?P<tail>[^']*--\s*param\s+(?P<name>\w+)\s*)$")
_VALID = {
    "Date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "Int": re.compile(r"^-?\d{1,18}$"),
    "String": re.compile(r"^[^'\\\n]{0,200}$"),
}


def _is_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    doc: str
    default: str | None  # None until its `-- param NAME` literal is found


@dataclass(frozen=True)
class CatalogQuery:
    name: str
    title: str
    doc: str
    params: dict[str, Param]
    sql: str
    columns: dict[str, str]  # name -> what it means, in the order the query returns them

    def render(self, values: dict[str, str]) -> str:
        """The SQL with the given parameter values in place of the defaults."""
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            raise ConfigError(f"query {self.name} has no parameter {unknown[0]!r}; it takes: "
                              + (", ".join(self.params) or "none"))
        lines = []
        for line in self.sql.splitlines():
            match = _PARAM_LINE.match(line)
            if match and match["name"] in values:
                param = self.params[match["name"]]
                value = values[param.name]
                if not _VALID[param.type].match(value) or (param.type == "Date" and not _is_date(value)):
                    raise ConfigError(f"--param {param.name}={value!r} is not a {param.type} "
                                      f"({'YYYY-MM-DD' if param.type == 'Date' else 'a whole number' if param.type == 'Int' else 'text without quotes'})")
                literal = value if param.type == "Int" else f"'{value}'"
                line = f"{match['head']}{literal}{match['tail']}"
            lines.append(line)
        return "\n".join(lines)


def load(path: Path) -> CatalogQuery:
    text = path.read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("--")]
    if not header:
        raise ConfigError(f"{path}: a catalog query starts with a comment naming its question")
    docs: list[str] = []
    params: dict[str, Param] = {}
    columns: dict[str, str] = {}
    for line in header:
        doc, column = _PARAM_DOC.match(line), _COLUMN_DOC.match(line)
        if doc:
            params[doc["name"]] = Param(doc["name"], doc["type"], doc["doc"].strip(), None)
        elif column:
            columns[column["name"]] = column["doc"].strip()
        elif not _PARAM_LINE.match(line):
            docs.append(line.lstrip("-").strip())
    for line in text.splitlines():
        match = _PARAM_LINE.match(line)
        if match and match["name"] in params:
            param = params[match["name"]]
            params[param.name] = Param(param.name, param.type, param.doc, match["literal"].strip("'"))
    missing = [name for name, param in params.items() if param.default is None]
    if missing:
        raise ConfigError(f"{path}: parameter {missing[0]} is documented but has no `-- param {missing[0]}` literal")
    return CatalogQuery(path.stem, docs[0], " ".join(d for d in docs[1:] if d), params, text, columns)


def catalog(directory: Path = QUERY_DIR) -> dict[str, CatalogQuery]:
    return {path.stem: load(path) for path in sorted(directory.glob("*.sql"))}
