"""The users a digest reports, in the one order every channel lists them, held in a few large buffers:
about 110 bytes a user, where a NewUser and its strings take 320."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import overload

from notifier.mixpanel import NewUser

# Between a user's values: a control character, which no shown value holds (text from Mixpanel is
# made display text where it enters). The distinct id comes last, so it may hold anything.
SEPARATOR = "\x1f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_UTF8, _AS_IT_CAME = "utf-8", "surrogatepass"  # a lone surrogate is kept as it came


def count_late(users: Sequence[NewUser]) -> int:
    """How many of `users` arrived late."""
    if isinstance(users, Users):
        return users.late
    return sum(1 for user in users if user.late)


# 100,000 users as objects would also outlive their use: once dropped, their memory stays in the
# allocator's arenas, pinned there by whatever was made after them. Large buffers go back whole.
class Users(Sequence[NewUser]):
    """Users appended one by one, then sorted (by created time, then distinct id) and read in order."""

    def __init__(self) -> None:
        # Each user's name, email, extra values and distinct id, UTF-8, SEPARATOR between them.
        self._text = bytearray()
        self._ends = array("Q")  # where each user's text ends
        self._id_starts = array("Q")  # where each user's distinct id starts
        self._created = array("q")  # microseconds since the epoch
        self._late = bytearray()  # 1 for a user that arrived late
        self._fields = 0  # values before the distinct id: the same number for every user
        self._order = array("I")  # positions in the order they are listed

    def append(self, user: NewUser) -> None:
        """Add `user` after the others."""
        fields = 2 + len(user.extra)
        shown = SEPARATOR.join((user.name, user.email, *user.extra))
        if self._fields not in (0, fields):
            raise ValueError("every user must have as many extra values")
        if shown.count(SEPARATOR) != fields - 1:
            raise ValueError("a shown value holds a control character")
        self._fields = fields
        self._order.append(len(self._created))
        text = self._text
        text += f"{shown}{SEPARATOR}".encode(_UTF8, _AS_IT_CAME)
        self._id_starts.append(len(text))
        text += user.distinct_id.encode(_UTF8, _AS_IT_CAME)
        self._ends.append(len(text))
        self._created.append((user.created - _EPOCH) // _MICROSECOND)
        self._late.append(user.late)

    def sort(self) -> None:
        """Order them by created time, then distinct id, so every run lists them the same way."""
        created = self._created
        # By time alone first (ints, not 100,000 tuples), then each run of equal times by id: UTF-8
        # bytes sort as their text does.
        order = sorted(self._order, key=created.__getitem__)
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and created[order[end]] == created[order[start]]:
                end += 1
            if end - start > 1:
                order[start:end] = sorted(order[start:end], key=self._id_bytes)
            start = end
        self._order = array("I", order)

    @property
    def late(self) -> int:
        """How many arrived late."""
        return self._late.count(1)

    def on_time_in(self, start: int, end: int) -> int:
        """How many did not arrive late and were created from `start` to before `end` (Unix seconds)."""
        low, high = start * 1_000_000, end * 1_000_000
        flagged = zip(self._created, self._late, strict=True)
        return sum(1 for at, late in flagged if not late and low <= at < high)

    def distinct_ids(self) -> Iterator[str]:
        """Each user's distinct id, in order."""
        return (self._id_bytes(position).decode(_UTF8, _AS_IT_CAME) for position in self._order)

    def emails(self) -> Iterator[str]:
        """Each user's email, in order."""
        return (self._values(position, 2)[1] for position in self._order)

    def extra_values(self, index: int) -> Iterator[str]:
        """Each user's extra value number `index`, in order."""
        return (self._values(position, 3 + index)[2 + index] for position in self._order)

    def __len__(self) -> int:
        return len(self._order)

    @overload
    def __getitem__(self, index: int) -> NewUser: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[NewUser]: ...

    def __getitem__(self, index: int | slice) -> NewUser | Sequence[NewUser]:
        if isinstance(index, slice):
            return list(self._read(self._order[index]))
        return next(self._read((self._order[index],)))

    def __iter__(self) -> Iterator[NewUser]:
        return self._read(self._order)

    def _id_bytes(self, position: int) -> bytearray:
        return self._text[self._id_starts[position] : self._ends[position]]

    def _values(self, position: int, split: int) -> list[str]:
        start = self._ends[position - 1] if position else 0
        text = self._text[start : self._ends[position]].decode(_UTF8, _AS_IT_CAME)
        return text.split(SEPARATOR, split)

    def _read(self, positions: Iterable[int]) -> Iterator[NewUser]:
        """The users at `positions`, made again; users listed together share one created datetime."""
        text, ends, fields = self._text, self._ends, self._fields
        at: int | None = None
        created = _EPOCH
        for position in positions:  # once per user in a CSV of 100,000: kept to plain steps
            if self._created[position] != at:
                at = self._created[position]
                created = _EPOCH + at * _MICROSECOND
            start = ends[position - 1] if position else 0
            name, email, *extra = (
                text[start : ends[position]].decode(_UTF8, _AS_IT_CAME).split(SEPARATOR, fields)
            )
            distinct_id = extra.pop()
            yield NewUser(distinct_id, name, email, created, tuple(extra), self._late[position] == 1)
