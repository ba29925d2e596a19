"""Request budgets: one scheduler per platform that every outgoing call goes through."""

from core.budget.budgets import Budgets
from core.budget.holds import Hold
from core.budget.pacing import BudgetPacer
from core.budget.scheduler import GLOBAL, BudgetPolicy, Priority, RequestScheduler, SchedulerClosed
from core.budget.windows import Window

__all__ = [
    "GLOBAL",
    "BudgetPacer",
    "BudgetPolicy",
    "Budgets",
    "Hold",
    "Priority",
    "RequestScheduler",
    "SchedulerClosed",
    "Window",
]
