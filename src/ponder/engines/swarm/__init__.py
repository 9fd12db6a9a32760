"""The Swarm engine: an orchestrator model creating and running up to 100 parallel sub-agents."""

from .config import ORCH, SwarmConfig
from .engine import Swarm
from .memory import Blackboard
from .metrics import TaskRecord, critical_steps, stage_breakdown
from .scheduler import DependencyError, Scheduler, check_dag
from .state import AgentDef, SwarmRun
from .workers import interleaved_factory

__all__ = [
    "ORCH",
    "AgentDef",
    "Blackboard",
    "DependencyError",
    "Scheduler",
    "Swarm",
    "SwarmConfig",
    "SwarmRun",
    "TaskRecord",
    "check_dag",
    "critical_steps",
    "interleaved_factory",
    "stage_breakdown",
]
