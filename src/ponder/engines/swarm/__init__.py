"""The Swarm engine: an orchestrator model creating and running up to 100 parallel sub-agents."""

from .engine import AgentDef, Swarm, SwarmRun, interleaved_factory
from .memory import Blackboard
from .metrics import TaskRecord, critical_steps, stage_breakdown
from .scheduler import DependencyError, Scheduler, check_dag

__all__ = [
    "AgentDef",
    "Blackboard",
    "DependencyError",
    "Scheduler",
    "Swarm",
    "SwarmRun",
    "TaskRecord",
    "check_dag",
    "critical_steps",
    "interleaved_factory",
    "stage_breakdown",
]
