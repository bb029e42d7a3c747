"""salesflow: the business rules of a CRM's opportunities module, as a library.

The public names live here; everything else is private to the package unless a
submodule's ``__all__`` says otherwise. Storage adapters are imported from their own
modules: ``salesflow.sqlite`` and ``salesflow.postgres``.
"""

from moneyed import Money

from salesflow import policies, processes
from salesflow.app import SalesFlow
from salesflow.domain.activity import Activity, ActivityIndicator
from salesflow.domain.events import Event, EventKind
from salesflow.domain.opportunity import Opportunity, OpportunityAction
from salesflow.domain.planner import StageChangePlan
from salesflow.domain.process import Process, Stage, StageAction
from salesflow.domain.values import (
    ActionKind,
    ActivityKind,
    ActivityStatus,
    CancelPolicy,
    DealCounts,
    Indicator,
    Individual,
    InvoiceDraft,
    InvoiceLine,
    LineItem,
    Note,
    Organization,
    Related,
    StageKind,
    Status,
    TicketRef,
    initials,
)
from salesflow.memory import InMemoryRepository
from salesflow.policies import TeamPolicy
from salesflow.ports import (
    ChangeSet,
    Clock,
    Correspondence,
    ExchangeRates,
    FixedClock,
    Invitations,
    Policy,
    Repository,
    StaticRates,
    SystemClock,
)
from salesflow.queries import Page
from salesflow.reporting import Analytics, Forecast, ForecastGroup, Pipeline, StageSummary
from salesflow.results import BulkResult, Result

__all__ = [
    "ActionKind",
    "Activity",
    "ActivityIndicator",
    "ActivityKind",
    "ActivityStatus",
    "Analytics",
    "BulkResult",
    "CancelPolicy",
    "ChangeSet",
    "Clock",
    "Correspondence",
    "DealCounts",
    "Event",
    "EventKind",
    "ExchangeRates",
    "FixedClock",
    "Forecast",
    "ForecastGroup",
    "InMemoryRepository",
    "Indicator",
    "Individual",
    "Invitations",
    "InvoiceDraft",
    "InvoiceLine",
    "LineItem",
    "Money",
    "Note",
    "Opportunity",
    "OpportunityAction",
    "Organization",
    "Page",
    "Pipeline",
    "Policy",
    "Process",
    "Related",
    "Repository",
    "Result",
    "SalesFlow",
    "Stage",
    "StageAction",
    "StageChangePlan",
    "StageKind",
    "StageSummary",
    "StaticRates",
    "Status",
    "SystemClock",
    "TeamPolicy",
    "TicketRef",
    "initials",
    "policies",
    "processes",
]
