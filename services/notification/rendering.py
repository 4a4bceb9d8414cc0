"""Templates: the default set (templates/<locale>.yaml, versioned in git) and Jinja2 rendering.

Rendering runs in Jinja2's immutable sandbox (templates cannot reach Python internals or
mutate what they are given) with StrictUndefined (an undefined variable is an error, not an
empty string). Subject and text bodies are rendered without escaping; the HTML body in an
environment that autoescapes every variable, so an event field such as a review title can
never inject markup. Filters: `money` (a google.type.Money as JSON: "12.50 USD") and `label`
(an enum name as words: STATE_IN_TRANSIT -> "in transit").
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import yaml
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.notification.domain import Channel, Rendered

DEFAULTS_DIR = Path(__file__).with_name("templates")
CHANNEL_KEYS = {
    "email": Channel.EMAIL,
    "sms": Channel.SMS,
    "push": Channel.PUSH,
    "in_app": Channel.IN_APP,
}


@dataclass(frozen=True)
class Template:
    """One template: how one event type reads on one channel in one locale."""

    id: str
    event_type: str
    channel: Channel
    locale: str
    body_template: str
    subject_template: str = ""
    html_body_template: str = ""
    display_name: str = ""
    active: bool = True
    version: int = 1
    create_time: datetime | None = None
    update_time: datetime | None = None
    default: bool = False  # loaded from the repository's files


class RenderError(ValueError):
    """A template does not compile or render; `field` names the template field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _money(value: Any) -> str:
    if not isinstance(value, dict):
        return str(value)
    amount = decimal.Decimal(int(value.get("units", 0) or 0)) + decimal.Decimal(
        int(value.get("nanos", 0) or 0)
    ) / decimal.Decimal(10**9)
    return f"{amount.quantize(decimal.Decimal('0.01'))} {value.get('currency_code', '')}".strip()


def _label(value: Any) -> str:
    text = str(value)
    for prefix in ("STATE_", "REASON_", "FAILURE_CODE_", "CANCEL_REASON_"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text.replace("_", " ").lower()


def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        autoescape=autoescape, undefined=jinja2.StrictUndefined, keep_trailing_newline=False
    )
    env.filters["money"] = _money
    env.filters["label"] = _label
    return env


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


def check(subject: str, body: str, html: str) -> None:
    """Raises RenderError naming the field whose template does not compile."""
    for field, source, env in (
        ("subject_template", subject, _TEXT),
        ("body_template", body, _TEXT),
        ("html_body_template", html, _HTML),
    ):
        try:
            env.parse(source)
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(field, f"line {exc.lineno}: {exc.message}") from None


def render(template: Template, variables: dict[str, Any]) -> Rendered:
    """The subject, text and HTML of `template` with `variables` (event, user, shop ...)."""
    out: dict[str, str] = {}
    for field, source, env in (
        ("subject_template", template.subject_template, _TEXT),
        ("body_template", template.body_template, _TEXT),
        ("html_body_template", template.html_body_template, _HTML),
    ):
        if not source:
            out[field] = ""
            continue
        try:
            out[field] = env.from_string(source).render(**variables).strip()
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(field, f"line {exc.lineno}: {exc.message}") from None
        except jinja2.TemplateError as exc:
            raise RenderError(field, str(exc)) from None
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise RenderError(field, f"{type(exc).__name__}: {exc}") from None
    # A subject is one line, whatever the template's whitespace.
    subject = " ".join(out["subject_template"].split())
    return Rendered(subject=subject, body=out["body_template"], html_body=out["html_body_template"])


def load_defaults(directory: Path = DEFAULTS_DIR) -> list[Template]:
    """The default templates of every locale file (`<locale>.yaml`: event type -> channel ->
    {subject, body, html, version})."""
    templates: list[Template] = []
    for path in sorted(directory.glob("*.yaml")):
        locale = path.stem
        spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for event_type, channels in spec.items():
            for channel_key, parts in channels.items():
                channel = CHANNEL_KEYS[channel_key]
                check(parts.get("subject", ""), parts["body"], parts.get("html", ""))
                templates.append(
                    Template(
                        id=f"default:{event_type}:{channel_key}:{locale}",
                        event_type=event_type,
                        channel=channel,
                        locale=locale,
                        subject_template=parts.get("subject", ""),
                        body_template=parts["body"],
                        html_body_template=parts.get("html", ""),
                        display_name=f"{event_type.rsplit('.', 1)[-1]} {channel_key} ({locale})",
                        version=int(parts.get("version", 1)),
                        default=True,
                    )
                )
    return templates


def locale_chain(locale: str, default: str) -> list[str]:
    """Where to look for a template: "de-CH", then "de", then the default locale."""
    chain: list[str] = []
    for candidate in (locale, locale.split("-", 1)[0], default):
        if candidate and candidate not in chain:
            chain.append(candidate)
    return chain
