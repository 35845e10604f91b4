from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_UNCLAIMED: _ClassVar[JobState]
    JOB_STATE_CLAIMED: _ClassVar[JobState]
    JOB_STATE_COMPLETE: _ClassVar[JobState]
    JOB_STATE_TRASHED: _ClassVar[JobState]
    JOB_STATE_PARKED: _ClassVar[JobState]
    JOB_STATE_SUSPENDED: _ClassVar[JobState]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_SUCCESS: _ClassVar[Outcome]
    OUTCOME_REVERTED: _ClassVar[Outcome]
    OUTCOME_FAILURE: _ClassVar[Outcome]
    OUTCOME_CANCELLED: _ClassVar[Outcome]

class BoardStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOARD_STATUS_UNSPECIFIED: _ClassVar[BoardStatus]
    BOARD_STATUS_AVAILABLE: _ClassVar[BoardStatus]
    BOARD_STATUS_UNAVAILABLE: _ClassVar[BoardStatus]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_UNCLAIMED: JobState
JOB_STATE_CLAIMED: JobState
JOB_STATE_COMPLETE: JobState
JOB_STATE_TRASHED: JobState
JOB_STATE_PARKED: JobState
JOB_STATE_SUSPENDED: JobState
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_SUCCESS: Outcome
OUTCOME_REVERTED: Outcome
OUTCOME_FAILURE: Outcome
OUTCOME_CANCELLED: Outcome
BOARD_STATUS_UNSPECIFIED: BoardStatus
BOARD_STATUS_AVAILABLE: BoardStatus
BOARD_STATUS_UNAVAILABLE: BoardStatus

class Failure(_message.Message):
    __slots__ = ("kind", "message", "details_json", "cause")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    message: str
    details_json: str
    cause: Failure
    def __init__(self, kind: _Optional[str] = ..., message: _Optional[str] = ..., details_json: _Optional[str] = ..., cause: _Optional[_Union[Failure, _Mapping]] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("name", "kind", "state", "attempts", "executions", "failure", "result_json", "parked_deadline_ms", "completed_by", "completed_at_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    EXECUTIONS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    PARKED_DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_BY_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    state: str
    attempts: int
    executions: int
    failure: Failure
    result_json: str
    parked_deadline_ms: int
    completed_by: str
    completed_at_ms: int
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[str] = ..., attempts: _Optional[int] = ..., executions: _Optional[int] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ..., result_json: _Optional[str] = ..., parked_deadline_ms: _Optional[int] = ..., completed_by: _Optional[str] = ..., completed_at_ms: _Optional[int] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "flow", "store_json", "priority", "idempotency_key", "state", "owner", "claims", "outcome", "failure", "trash_reason", "cancel_requested", "created_at_ms", "finished_at_ms", "tasks", "flow_version", "flow_hash", "warnings", "outputs_json", "requires", "deadline_ms", "rerun_of", "suspend_requested", "actions")
    ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    STORE_JSON_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CLAIMS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    TRASH_REASON_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    FLOW_VERSION_FIELD_NUMBER: _ClassVar[int]
    FLOW_HASH_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    REQUIRES_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    RERUN_OF_FIELD_NUMBER: _ClassVar[int]
    SUSPEND_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    ACTIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    flow: str
    store_json: str
    priority: int
    idempotency_key: str
    state: JobState
    owner: str
    claims: int
    outcome: Outcome
    failure: Failure
    trash_reason: str
    cancel_requested: bool
    created_at_ms: int
    finished_at_ms: int
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    flow_version: int
    flow_hash: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    outputs_json: str
    requires: _containers.RepeatedScalarFieldContainer[str]
    deadline_ms: int
    rerun_of: str
    suspend_requested: bool
    actions: _containers.RepeatedCompositeFieldContainer[OperatorAction]
    def __init__(self, id: _Optional[str] = ..., flow: _Optional[str] = ..., store_json: _Optional[str] = ..., priority: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., owner: _Optional[str] = ..., claims: _Optional[int] = ..., outcome: _Optional[_Union[Outcome, str]] = ..., failure: _Optional[_Union[Failure, _Mapping]] = ..., trash_reason: _Optional[str] = ..., cancel_requested: bool = ..., created_at_ms: _Optional[int] = ..., finished_at_ms: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., flow_version: _Optional[int] = ..., flow_hash: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ..., outputs_json: _Optional[str] = ..., requires: _Optional[_Iterable[str]] = ..., deadline_ms: _Optional[int] = ..., rerun_of: _Optional[str] = ..., suspend_requested: bool = ..., actions: _Optional[_Iterable[_Union[OperatorAction, _Mapping]]] = ...) -> None: ...

class OperatorAction(_message.Message):
    __slots__ = ("action", "by", "at_ms")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    AT_MS_FIELD_NUMBER: _ClassVar[int]
    action: str
    by: str
    at_ms: int
    def __init__(self, action: _Optional[str] = ..., by: _Optional[str] = ..., at_ms: _Optional[int] = ...) -> None: ...

class SuspendJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ResumeJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RetryJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RerunJobRequest(_message.Message):
    __slots__ = ("id", "store_json", "deadline_in_ms", "idempotency_key")
    ID_FIELD_NUMBER: _ClassVar[int]
    STORE_JSON_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_IN_MS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    store_json: str
    deadline_in_ms: int
    idempotency_key: str
    def __init__(self, id: _Optional[str] = ..., store_json: _Optional[str] = ..., deadline_in_ms: _Optional[int] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class PostJobRequest(_message.Message):
    __slots__ = ("flow", "store_json", "priority", "idempotency_key", "version", "deadline_in_ms")
    FLOW_FIELD_NUMBER: _ClassVar[int]
    STORE_JSON_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_IN_MS_FIELD_NUMBER: _ClassVar[int]
    flow: str
    store_json: str
    priority: int
    idempotency_key: str
    version: int
    deadline_in_ms: int
    def __init__(self, flow: _Optional[str] = ..., store_json: _Optional[str] = ..., priority: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., version: _Optional[int] = ..., deadline_in_ms: _Optional[int] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("state", "flow", "page_size", "page_token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    flow: str
    page_size: int
    page_token: str
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., flow: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class ListFlowsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Flow(_message.Message):
    __slots__ = ("name", "required_inputs", "optional_inputs", "description", "inputs", "kind", "version", "runs_here")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_INPUTS_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_INPUTS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RUNS_HERE_FIELD_NUMBER: _ClassVar[int]
    name: str
    required_inputs: _containers.RepeatedScalarFieldContainer[str]
    optional_inputs: _containers.RepeatedScalarFieldContainer[str]
    description: str
    inputs: _containers.RepeatedCompositeFieldContainer[Input]
    kind: str
    version: int
    runs_here: bool
    def __init__(self, name: _Optional[str] = ..., required_inputs: _Optional[_Iterable[str]] = ..., optional_inputs: _Optional[_Iterable[str]] = ..., description: _Optional[str] = ..., inputs: _Optional[_Iterable[_Union[Input, _Mapping]]] = ..., kind: _Optional[str] = ..., version: _Optional[int] = ..., runs_here: bool = ...) -> None: ...

class Input(_message.Message):
    __slots__ = ("name", "spec")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    name: str
    spec: InputSpec
    def __init__(self, name: _Optional[str] = ..., spec: _Optional[_Union[InputSpec, _Mapping]] = ...) -> None: ...

class InputSpec(_message.Message):
    __slots__ = ("type", "default_json", "enum_json", "minimum", "maximum", "min_items", "items", "pattern", "description")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ENUM_JSON_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MAXIMUM_FIELD_NUMBER: _ClassVar[int]
    MIN_ITEMS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    type: str
    default_json: str
    enum_json: _containers.RepeatedScalarFieldContainer[str]
    minimum: float
    maximum: float
    min_items: int
    items: InputSpec
    pattern: str
    description: str
    def __init__(self, type: _Optional[str] = ..., default_json: _Optional[str] = ..., enum_json: _Optional[_Iterable[str]] = ..., minimum: _Optional[float] = ..., maximum: _Optional[float] = ..., min_items: _Optional[int] = ..., items: _Optional[_Union[InputSpec, _Mapping]] = ..., pattern: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ListFlowsResponse(_message.Message):
    __slots__ = ("flows",)
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    flows: _containers.RepeatedCompositeFieldContainer[Flow]
    def __init__(self, flows: _Optional[_Iterable[_Union[Flow, _Mapping]]] = ...) -> None: ...

class ListConductorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Conductor(_message.Message):
    __slots__ = ("name", "address", "jobs", "since_ms", "draining", "task_kinds", "rust_flows", "features")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    TASK_KINDS_FIELD_NUMBER: _ClassVar[int]
    RUST_FLOWS_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    jobs: int
    since_ms: int
    draining: bool
    task_kinds: _containers.RepeatedScalarFieldContainer[str]
    rust_flows: _containers.RepeatedScalarFieldContainer[str]
    features: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., jobs: _Optional[int] = ..., since_ms: _Optional[int] = ..., draining: bool = ..., task_kinds: _Optional[_Iterable[str]] = ..., rust_flows: _Optional[_Iterable[str]] = ..., features: _Optional[_Iterable[str]] = ...) -> None: ...

class ListConductorsResponse(_message.Message):
    __slots__ = ("conductors",)
    CONDUCTORS_FIELD_NUMBER: _ClassVar[int]
    conductors: _containers.RepeatedCompositeFieldContainer[Conductor]
    def __init__(self, conductors: _Optional[_Iterable[_Union[Conductor, _Mapping]]] = ...) -> None: ...

class DrainRequest(_message.Message):
    __slots__ = ("name", "draining")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    name: str
    draining: bool
    def __init__(self, name: _Optional[str] = ..., draining: bool = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RunningJob(_message.Message):
    __slots__ = ("id", "flow", "claim_token", "claimed_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    CLAIM_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    flow: str
    claim_token: int
    claimed_ms: int
    def __init__(self, id: _Optional[str] = ..., flow: _Optional[str] = ..., claim_token: _Optional[int] = ..., claimed_ms: _Optional[int] = ...) -> None: ...

class ConductorStatus(_message.Message):
    __slots__ = ("name", "board", "board_cause", "sessions_started", "sessions_lost", "draining", "running", "started_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BOARD_FIELD_NUMBER: _ClassVar[int]
    BOARD_CAUSE_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_STARTED_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_LOST_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    STARTED_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    board: BoardStatus
    board_cause: str
    sessions_started: int
    sessions_lost: int
    draining: bool
    running: _containers.RepeatedCompositeFieldContainer[RunningJob]
    started_ms: int
    def __init__(self, name: _Optional[str] = ..., board: _Optional[_Union[BoardStatus, str]] = ..., board_cause: _Optional[str] = ..., sessions_started: _Optional[int] = ..., sessions_lost: _Optional[int] = ..., draining: bool = ..., running: _Optional[_Iterable[_Union[RunningJob, _Mapping]]] = ..., started_ms: _Optional[int] = ...) -> None: ...

class FlowFileText(_message.Message):
    __slots__ = ("file", "text")
    FILE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    file: str
    text: str
    def __init__(self, file: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class ApplyFlowsRequest(_message.Message):
    __slots__ = ("files",)
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[FlowFileText]
    def __init__(self, files: _Optional[_Iterable[_Union[FlowFileText, _Mapping]]] = ...) -> None: ...

class AppliedFlow(_message.Message):
    __slots__ = ("file", "name", "version", "created", "current", "hash")
    FILE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    file: str
    name: str
    version: int
    created: bool
    current: int
    hash: str
    def __init__(self, file: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., created: bool = ..., current: _Optional[int] = ..., hash: _Optional[str] = ...) -> None: ...

class ApplyFlowsResponse(_message.Message):
    __slots__ = ("flows",)
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    flows: _containers.RepeatedCompositeFieldContainer[AppliedFlow]
    def __init__(self, flows: _Optional[_Iterable[_Union[AppliedFlow, _Mapping]]] = ...) -> None: ...

class FlowDefinition(_message.Message):
    __slots__ = ("name", "version", "hash", "source", "applied_ms", "current")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_MS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    hash: str
    source: str
    applied_ms: int
    current: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., hash: _Optional[str] = ..., source: _Optional[str] = ..., applied_ms: _Optional[int] = ..., current: bool = ...) -> None: ...

class GetFlowRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class FlowHistoryRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class FlowHistoryResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[FlowDefinition]
    def __init__(self, versions: _Optional[_Iterable[_Union[FlowDefinition, _Mapping]]] = ...) -> None: ...

class DeleteFlowRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteFlowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FlowGraphRequest(_message.Message):
    __slots__ = ("name", "version", "format", "store_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    STORE_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    format: str
    store_json: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., format: _Optional[str] = ..., store_json: _Optional[str] = ...) -> None: ...

class FlowGraphResponse(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class TaskRef(_message.Message):
    __slots__ = ("job_id", "task")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    task: str
    def __init__(self, job_id: _Optional[str] = ..., task: _Optional[str] = ...) -> None: ...

class CompleteTaskRequest(_message.Message):
    __slots__ = ("token", "task", "result_json", "failure", "operator")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    token: str
    task: TaskRef
    result_json: str
    failure: str
    operator: str
    def __init__(self, token: _Optional[str] = ..., task: _Optional[_Union[TaskRef, _Mapping]] = ..., result_json: _Optional[str] = ..., failure: _Optional[str] = ..., operator: _Optional[str] = ...) -> None: ...

class CompleteTaskResponse(_message.Message):
    __slots__ = ("completed_now",)
    COMPLETED_NOW_FIELD_NUMBER: _ClassVar[int]
    completed_now: bool
    def __init__(self, completed_now: bool = ...) -> None: ...

class CreateScheduleRequest(_message.Message):
    __slots__ = ("name", "flow", "store_json", "cron", "timezone", "catch_up")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    STORE_JSON_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_FIELD_NUMBER: _ClassVar[int]
    name: str
    flow: str
    store_json: str
    cron: str
    timezone: str
    catch_up: int
    def __init__(self, name: _Optional[str] = ..., flow: _Optional[str] = ..., store_json: _Optional[str] = ..., cron: _Optional[str] = ..., timezone: _Optional[str] = ..., catch_up: _Optional[int] = ...) -> None: ...

class ScheduleFiring(_message.Message):
    __slots__ = ("tick_ms", "job_id", "fired_ms")
    TICK_MS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    FIRED_MS_FIELD_NUMBER: _ClassVar[int]
    tick_ms: int
    job_id: str
    fired_ms: int
    def __init__(self, tick_ms: _Optional[int] = ..., job_id: _Optional[str] = ..., fired_ms: _Optional[int] = ...) -> None: ...

class Schedule(_message.Message):
    __slots__ = ("name", "flow", "store_json", "cron", "timezone", "catch_up", "paused", "created_ms", "next_tick_ms", "recent", "last_error", "pending")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FLOW_FIELD_NUMBER: _ClassVar[int]
    STORE_JSON_FIELD_NUMBER: _ClassVar[int]
    CRON_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    CREATED_MS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TICK_MS_FIELD_NUMBER: _ClassVar[int]
    RECENT_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    name: str
    flow: str
    store_json: str
    cron: str
    timezone: str
    catch_up: int
    paused: bool
    created_ms: int
    next_tick_ms: int
    recent: _containers.RepeatedCompositeFieldContainer[ScheduleFiring]
    last_error: str
    pending: int
    def __init__(self, name: _Optional[str] = ..., flow: _Optional[str] = ..., store_json: _Optional[str] = ..., cron: _Optional[str] = ..., timezone: _Optional[str] = ..., catch_up: _Optional[int] = ..., paused: bool = ..., created_ms: _Optional[int] = ..., next_tick_ms: _Optional[int] = ..., recent: _Optional[_Iterable[_Union[ScheduleFiring, _Mapping]]] = ..., last_error: _Optional[str] = ..., pending: _Optional[int] = ...) -> None: ...

class ListSchedulesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSchedulesResponse(_message.Message):
    __slots__ = ("schedules",)
    SCHEDULES_FIELD_NUMBER: _ClassVar[int]
    schedules: _containers.RepeatedCompositeFieldContainer[Schedule]
    def __init__(self, schedules: _Optional[_Iterable[_Union[Schedule, _Mapping]]] = ...) -> None: ...

class GetScheduleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PauseScheduleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResumeScheduleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteScheduleRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteScheduleResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
