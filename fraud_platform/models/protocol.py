"""The evaluation protocol of the Fraud Detection Handbook (Le Borgne et al., chapters 3 and 5),
as the platform's own.

A training set as of day D lays out, oldest first:

    [train: train_days] [delay: delay_days] [test: test_days] [maturity: delay_days] = D

- The delay period is a gap: a model put into service at the start of the test period cannot
  have learnt from the days just before it, whose labels have not arrived yet. Training rows
  are labelled with what was known when the test period began.
- Test labels get the label delay again to mature after the last test day, so D is the first
  day on which the test period can be judged; nothing later than D is read.
- A card known to be compromised on a test day (a fraud label of one of its transactions
  since the training start, known before that day began) leaves that day's test set: it is
  already blocked, and catching it again is worth nothing.

Prequential validation (chapter 5) slides the same layout back in time, one test period per
fold, so that model selection only uses labels known before the test period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from fraud_platform.features.catalog import DAY_MS, LABEL_DELAY_DAYS

# The protocol's measures, any of which model selection can maximize (models.evaluation).
METRICS = ("average_precision", "card_precision_at_k", "auc_roc")


def _days(first: date, count: int) -> list[str]:
    return [(first + timedelta(days=i)).isoformat() for i in range(count)]


def day_start_ms(day: str) -> int:
    return (date.fromisoformat(day) - date(1970, 1, 1)).days * DAY_MS


@dataclass(frozen=True)
class Periods:
    """The dates of one training set and the instants its labels are read at."""

    as_of: str
    train: list[str]
    delay: list[str]
    test: list[str]

    @property
    def all_dates(self) -> list[str]:
        return [*self.train, *self.delay, *self.test]

    @property
    def train_labels_before_ms(self) -> int:
        """Training labels: those known when the test period starts."""
        return day_start_ms(self.test[0])

    @property
    def test_labels_before_ms(self) -> int:
        """Test labels: those known by the end of the as-of day."""
        return day_start_ms(self.as_of) + DAY_MS


@dataclass(frozen=True)
class TrainingWindow:
    """Training, delay and test periods in days (the Handbook's 7/7/7 is `TrainingWindow(7)`)."""

    train_days: int = 60
    delay_days: int = LABEL_DELAY_DAYS
    test_days: int = 7

    def __post_init__(self) -> None:
        if self.train_days < 1 or self.test_days < 1 or self.delay_days < 0:
            raise ValueError(
                f"a training window needs at least one training and one test day and no "
                f"negative delay (got train {self.train_days}, delay {self.delay_days}, "
                f"test {self.test_days})"
            )

    @property
    def window_days(self) -> int:
        """Days from the first training day to the as-of day, both included."""
        return self.train_days + 2 * self.delay_days + self.test_days

    def periods(self, as_of: str) -> Periods:
        first = date.fromisoformat(as_of) - timedelta(days=self.window_days - 1)
        train = _days(first, self.train_days)
        delay = _days(first + timedelta(days=self.train_days), self.delay_days)
        test = _days(first + timedelta(days=self.train_days + self.delay_days), self.test_days)
        return Periods(as_of, train, delay, test)

    def as_of_for(self, train_start: date) -> str:
        """The as-of day of the training set whose training period starts on `train_start`."""
        return (train_start + timedelta(days=self.window_days - 1)).isoformat()

    def fold_as_of(self, as_of: str, fold: int) -> str:
        """The as-of day of prequential validation fold `fold` (0 = the latest): its test
        period ends where the training period ends, less `fold` test periods, and its labels
        are read before the real test period starts."""
        back = self.delay_days + self.test_days * (fold + 1)
        return (date.fromisoformat(as_of) - timedelta(days=back)).isoformat()
