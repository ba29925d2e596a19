"""Request budgets: one scheduler per platform that every outgoing call goes through."""

from core.budget.scheduler import GLOBAL, BudgetPolicy, Priority, RequestScheduler, SchedulerClosed
from core.budget.windows import Window

__all__ = ["GLOBAL", "BudgetPolicy", "Priority", "RequestScheduler", "SchedulerClosed", "Window"]
