from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Action(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_UNSPECIFIED: _ClassVar[Action]
    ACTION_EXECUTE: _ClassVar[Action]
    ACTION_REVERT: _ClassVar[Action]
    ACTION_PARKED: _ClassVar[Action]
ACTION_UNSPECIFIED: Action
ACTION_EXECUTE: Action
ACTION_REVERT: Action
ACTION_PARKED: Action

class WorkerMessage(_message.Message):
    __slots__ = ("hello", "result", "progress", "heartbeat", "slots")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    result: Result
    progress: Progress
    heartbeat: Heartbeat
    slots: Slots
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., result: _Optional[_Union[Result, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., slots: _Optional[_Union[Slots, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("worker_id", "tasks", "slots", "labels", "sdk", "running")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SDK_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    tasks: _containers.RepeatedCompositeFieldContainer[TaskOffer]
    slots: int
    labels: _containers.ScalarMap[str, str]
    sdk: str
    running: _containers.RepeatedCompositeFieldContainer[RunningAssignment]
    def __init__(self, worker_id: _Optional[str] = ..., tasks: _Optional[_Iterable[_Union[TaskOffer, _Mapping]]] = ..., slots: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., sdk: _Optional[str] = ..., running: _Optional[_Iterable[_Union[RunningAssignment, _Mapping]]] = ...) -> None: ...

class TaskOffer(_message.Message):
    __slots__ = ("name", "can_revert", "default_timeout_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CAN_REVERT_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    can_revert: bool
    default_timeout_ms: int
    def __init__(self, name: _Optional[str] = ..., can_revert: bool = ..., default_timeout_ms: _Optional[int] = ...) -> None: ...

class RunningAssignment(_message.Message):
    __slots__ = ("dispatch_id", "job_id", "atom", "attempt")
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATOM_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    dispatch_id: str
    job_id: str
    atom: str
    attempt: int
    def __init__(self, dispatch_id: _Optional[str] = ..., job_id: _Optional[str] = ..., atom: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("dispatch_id", "attempt", "success", "failure", "parked")
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    PARKED_FIELD_NUMBER: _ClassVar[int]
    dispatch_id: str
    attempt: int
    success: Success
    failure: TaskFailure
    parked: Parked
    def __init__(self, dispatch_id: _Optional[str] = ..., attempt: _Optional[int] = ..., success: _Optional[_Union[Success, _Mapping]] = ..., failure: _Optional[_Union[TaskFailure, _Mapping]] = ..., parked: _Optional[_Union[Parked, _Mapping]] = ...) -> None: ...

class Parked(_message.Message):
    __slots__ = ("timeout_ms",)
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    timeout_ms: int
    def __init__(self, timeout_ms: _Optional[int] = ...) -> None: ...

class Success(_message.Message):
    __slots__ = ("result_json",)
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    result_json: str
    def __init__(self, result_json: _Optional[str] = ...) -> None: ...

class TaskFailure(_message.Message):
    __slots__ = ("kind", "message", "details_json", "causes")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    CAUSES_FIELD_NUMBER: _ClassVar[int]
    kind: str
    message: str
    details_json: str
    causes: _containers.RepeatedCompositeFieldContainer[TaskFailure]
    def __init__(self, kind: _Optional[str] = ..., message: _Optional[str] = ..., details_json: _Optional[str] = ..., causes: _Optional[_Iterable[_Union[TaskFailure, _Mapping]]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("dispatch_id", "details_json")
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    dispatch_id: str
    details_json: str
    def __init__(self, dispatch_id: _Optional[str] = ..., details_json: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("free_slots",)
    FREE_SLOTS_FIELD_NUMBER: _ClassVar[int]
    free_slots: int
    def __init__(self, free_slots: _Optional[int] = ...) -> None: ...

class Slots(_message.Message):
    __slots__ = ("slots",)
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    slots: int
    def __init__(self, slots: _Optional[int] = ...) -> None: ...

class ConductorMessage(_message.Message):
    __slots__ = ("welcome", "assign", "cancel", "heartbeat", "error")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    assign: Assign
    cancel: Cancel
    heartbeat: Heartbeat
    error: ProtocolError
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., assign: _Optional[_Union[Assign, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., error: _Optional[_Union[ProtocolError, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("conductor", "heartbeat_interval_ms", "heartbeat_timeout_ms", "max_result_bytes")
    CONDUCTOR_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULT_BYTES_FIELD_NUMBER: _ClassVar[int]
    conductor: str
    heartbeat_interval_ms: int
    heartbeat_timeout_ms: int
    max_result_bytes: int
    def __init__(self, conductor: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., heartbeat_timeout_ms: _Optional[int] = ..., max_result_bytes: _Optional[int] = ...) -> None: ...

class Assign(_message.Message):
    __slots__ = ("dispatch_id", "action", "task", "job_id", "atom", "attempt", "idempotency_key", "inputs_json", "timeout_ms", "heartbeat_timeout_ms", "result_json", "failure", "callback")
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATOM_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    INPUTS_JSON_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    CALLBACK_FIELD_NUMBER: _ClassVar[int]
    dispatch_id: str
    action: Action
    task: str
    job_id: str
    atom: str
    attempt: int
    idempotency_key: str
    inputs_json: str
    timeout_ms: int
    heartbeat_timeout_ms: int
    result_json: str
    failure: TaskFailure
    callback: Callback
    def __init__(self, dispatch_id: _Optional[str] = ..., action: _Optional[_Union[Action, str]] = ..., task: _Optional[str] = ..., job_id: _Optional[str] = ..., atom: _Optional[str] = ..., attempt: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., inputs_json: _Optional[str] = ..., timeout_ms: _Optional[int] = ..., heartbeat_timeout_ms: _Optional[int] = ..., result_json: _Optional[str] = ..., failure: _Optional[_Union[TaskFailure, _Mapping]] = ..., callback: _Optional[_Union[Callback, _Mapping]] = ...) -> None: ...

class Callback(_message.Message):
    __slots__ = ("token", "url", "deadline_ms")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    token: str
    url: str
    deadline_ms: int
    def __init__(self, token: _Optional[str] = ..., url: _Optional[str] = ..., deadline_ms: _Optional[int] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ("dispatch_id", "reason")
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    dispatch_id: str
    reason: str
    def __init__(self, dispatch_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ProtocolError(_message.Message):
    __slots__ = ("code", "message", "dispatch_id")
    class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CODE_UNSPECIFIED: _ClassVar[ProtocolError.Code]
        UNKNOWN_DISPATCH: _ClassVar[ProtocolError.Code]
        STALE_RESULT: _ClassVar[ProtocolError.Code]
        RESULT_TOO_LARGE: _ClassVar[ProtocolError.Code]
        BAD_MESSAGE: _ClassVar[ProtocolError.Code]
    CODE_UNSPECIFIED: ProtocolError.Code
    UNKNOWN_DISPATCH: ProtocolError.Code
    STALE_RESULT: ProtocolError.Code
    RESULT_TOO_LARGE: ProtocolError.Code
    BAD_MESSAGE: ProtocolError.Code
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    code: ProtocolError.Code
    message: str
    dispatch_id: str
    def __init__(self, code: _Optional[_Union[ProtocolError.Code, str]] = ..., message: _Optional[str] = ..., dispatch_id: _Optional[str] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ("local_only",)
    LOCAL_ONLY_FIELD_NUMBER: _ClassVar[int]
    local_only: bool
    def __init__(self, local_only: bool = ...) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("worker_id", "conductor", "tasks", "slots", "slots_in_use", "labels", "sdk", "connected_since_ms")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    CONDUCTOR_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_IN_USE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SDK_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    conductor: str
    tasks: _containers.RepeatedCompositeFieldContainer[TaskOffer]
    slots: int
    slots_in_use: int
    labels: _containers.ScalarMap[str, str]
    sdk: str
    connected_since_ms: int
    def __init__(self, worker_id: _Optional[str] = ..., conductor: _Optional[str] = ..., tasks: _Optional[_Iterable[_Union[TaskOffer, _Mapping]]] = ..., slots: _Optional[int] = ..., slots_in_use: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., sdk: _Optional[str] = ..., connected_since_ms: _Optional[int] = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ("workers",)
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerInfo]
    def __init__(self, workers: _Optional[_Iterable[_Union[WorkerInfo, _Mapping]]] = ...) -> None: ...

class RelayUp(_message.Message):
    __slots__ = ("hello", "assign", "cancel", "heartbeat")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    hello: RelayHello
    assign: RelayAssign
    cancel: Cancel
    heartbeat: Heartbeat
    def __init__(self, hello: _Optional[_Union[RelayHello, _Mapping]] = ..., assign: _Optional[_Union[RelayAssign, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class RelayHello(_message.Message):
    __slots__ = ("conductor",)
    CONDUCTOR_FIELD_NUMBER: _ClassVar[int]
    conductor: str
    def __init__(self, conductor: _Optional[str] = ...) -> None: ...

class RelayAssign(_message.Message):
    __slots__ = ("worker_id", "assign")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    assign: Assign
    def __init__(self, worker_id: _Optional[str] = ..., assign: _Optional[_Union[Assign, _Mapping]] = ...) -> None: ...

class RelayDown(_message.Message):
    __slots__ = ("result", "progress", "failed", "heartbeat", "slots")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    result: Result
    progress: Progress
    failed: RelayFailed
    heartbeat: Heartbeat
    slots: WorkerSlots
    def __init__(self, result: _Optional[_Union[Result, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., failed: _Optional[_Union[RelayFailed, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., slots: _Optional[_Union[WorkerSlots, _Mapping]] = ...) -> None: ...

class RelayFailed(_message.Message):
    __slots__ = ("dispatch_id", "failure")
    DISPATCH_ID_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    dispatch_id: str
    failure: TaskFailure
    def __init__(self, dispatch_id: _Optional[str] = ..., failure: _Optional[_Union[TaskFailure, _Mapping]] = ...) -> None: ...

class WorkerSlots(_message.Message):
    __slots__ = ("worker_id", "free")
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    FREE_FIELD_NUMBER: _ClassVar[int]
    worker_id: str
    free: int
    def __init__(self, worker_id: _Optional[str] = ..., free: _Optional[int] = ...) -> None: ...
