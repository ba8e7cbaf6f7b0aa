import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CredentialKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CREDENTIAL_KIND_UNSPECIFIED: _ClassVar[CredentialKind]
    CREDENTIAL_KIND_API_KEY: _ClassVar[CredentialKind]
    CREDENTIAL_KIND_JWT: _ClassVar[CredentialKind]
    CREDENTIAL_KIND_SESSION: _ClassVar[CredentialKind]

class Operation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPERATION_UNSPECIFIED: _ClassVar[Operation]
    OPERATION_IMAGE_GENERATION: _ClassVar[Operation]
    OPERATION_IMAGE_EDIT: _ClassVar[Operation]
    OPERATION_IMAGE_SEGMENTATION: _ClassVar[Operation]
    OPERATION_IMAGE_UPSCALE: _ClassVar[Operation]
    OPERATION_IMAGE_BACKGROUND_REMOVAL: _ClassVar[Operation]
    OPERATION_VIDEO_BACKGROUND_REMOVAL: _ClassVar[Operation]
    OPERATION_VOICE_CLONE: _ClassVar[Operation]
    OPERATION_MUSIC_GENERATION: _ClassVar[Operation]
    OPERATION_MUSIC_COVER: _ClassVar[Operation]
    OPERATION_MUSIC_REPAINT: _ClassVar[Operation]
    OPERATION_IMAGE_TO_VIDEO: _ClassVar[Operation]
    OPERATION_CHAT_COMPLETION: _ClassVar[Operation]

class HoldState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOLD_STATE_UNSPECIFIED: _ClassVar[HoldState]
    HOLD_STATE_HELD: _ClassVar[HoldState]
    HOLD_STATE_COMMITTED: _ClassVar[HoldState]
    HOLD_STATE_RELEASED: _ClassVar[HoldState]
    HOLD_STATE_EXPIRED: _ClassVar[HoldState]

class PriceUnit(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRICE_UNIT_UNSPECIFIED: _ClassVar[PriceUnit]
    PRICE_UNIT_REQUEST: _ClassVar[PriceUnit]
    PRICE_UNIT_IMAGE: _ClassVar[PriceUnit]
    PRICE_UNIT_FRAME: _ClassVar[PriceUnit]
    PRICE_UNIT_MEGAPIXEL: _ClassVar[PriceUnit]
CREDENTIAL_KIND_UNSPECIFIED: CredentialKind
CREDENTIAL_KIND_API_KEY: CredentialKind
CREDENTIAL_KIND_JWT: CredentialKind
CREDENTIAL_KIND_SESSION: CredentialKind
OPERATION_UNSPECIFIED: Operation
OPERATION_IMAGE_GENERATION: Operation
OPERATION_IMAGE_EDIT: Operation
OPERATION_IMAGE_SEGMENTATION: Operation
OPERATION_IMAGE_UPSCALE: Operation
OPERATION_IMAGE_BACKGROUND_REMOVAL: Operation
OPERATION_VIDEO_BACKGROUND_REMOVAL: Operation
OPERATION_VOICE_CLONE: Operation
OPERATION_MUSIC_GENERATION: Operation
OPERATION_MUSIC_COVER: Operation
OPERATION_MUSIC_REPAINT: Operation
OPERATION_IMAGE_TO_VIDEO: Operation
OPERATION_CHAT_COMPLETION: Operation
HOLD_STATE_UNSPECIFIED: HoldState
HOLD_STATE_HELD: HoldState
HOLD_STATE_COMMITTED: HoldState
HOLD_STATE_RELEASED: HoldState
HOLD_STATE_EXPIRED: HoldState
PRICE_UNIT_UNSPECIFIED: PriceUnit
PRICE_UNIT_REQUEST: PriceUnit
PRICE_UNIT_IMAGE: PriceUnit
PRICE_UNIT_FRAME: PriceUnit
PRICE_UNIT_MEGAPIXEL: PriceUnit

class WatchRevocationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchRevocationsResponse(_message.Message):
    __slots__ = ("user_ids", "heartbeat_seconds")
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    heartbeat_seconds: int
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ..., heartbeat_seconds: _Optional[int] = ...) -> None: ...

class User(_message.Message):
    __slots__ = ("user_id", "email", "premium", "create_time", "disabled", "email_verified")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PREMIUM_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    EMAIL_VERIFIED_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    premium: bool
    create_time: _timestamp_pb2.Timestamp
    disabled: bool
    email_verified: bool
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., premium: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., disabled: _Optional[bool] = ..., email_verified: _Optional[bool] = ...) -> None: ...

class AuthenticateRequest(_message.Message):
    __slots__ = ("credential",)
    CREDENTIAL_FIELD_NUMBER: _ClassVar[int]
    credential: str
    def __init__(self, credential: _Optional[str] = ...) -> None: ...

class AuthenticateResponse(_message.Message):
    __slots__ = ("user", "kind", "key_id")
    USER_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    user: User
    kind: CredentialKind
    key_id: str
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., kind: _Optional[_Union[CredentialKind, str]] = ..., key_id: _Optional[str] = ...) -> None: ...

class ChargeItem(_message.Message):
    __slots__ = ("operation", "model", "method", "width", "height", "quantity")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    operation: Operation
    model: str
    method: str
    width: int
    height: int
    quantity: int
    def __init__(self, operation: _Optional[_Union[Operation, str]] = ..., model: _Optional[str] = ..., method: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., quantity: _Optional[int] = ...) -> None: ...

class QuoteRequest(_message.Message):
    __slots__ = ("user_id", "items")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    items: _containers.RepeatedCompositeFieldContainer[ChargeItem]
    def __init__(self, user_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ChargeItem, _Mapping]]] = ...) -> None: ...

class QuoteResponse(_message.Message):
    __slots__ = ("amount_mc", "item_amounts_mc")
    AMOUNT_MC_FIELD_NUMBER: _ClassVar[int]
    ITEM_AMOUNTS_MC_FIELD_NUMBER: _ClassVar[int]
    amount_mc: int
    item_amounts_mc: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, amount_mc: _Optional[int] = ..., item_amounts_mc: _Optional[_Iterable[int]] = ...) -> None: ...

class Hold(_message.Message):
    __slots__ = ("hold_id", "user_id", "amount_mc", "state", "expire_time", "charged_mc")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MC_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CHARGED_MC_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    user_id: str
    amount_mc: int
    state: HoldState
    expire_time: _timestamp_pb2.Timestamp
    charged_mc: int
    def __init__(self, hold_id: _Optional[str] = ..., user_id: _Optional[str] = ..., amount_mc: _Optional[int] = ..., state: _Optional[_Union[HoldState, str]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., charged_mc: _Optional[int] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("user_id", "items", "idempotency_key", "request_fingerprint", "ttl_seconds")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    items: _containers.RepeatedCompositeFieldContainer[ChargeItem]
    idempotency_key: str
    request_fingerprint: str
    ttl_seconds: int
    def __init__(self, user_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ChargeItem, _Mapping]]] = ..., idempotency_key: _Optional[str] = ..., request_fingerprint: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("hold", "replayed", "stored_response", "stored_response_content_type", "max_stored_response_bytes")
    HOLD_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    STORED_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    STORED_RESPONSE_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_STORED_RESPONSE_BYTES_FIELD_NUMBER: _ClassVar[int]
    hold: Hold
    replayed: bool
    stored_response: bytes
    stored_response_content_type: str
    max_stored_response_bytes: int
    def __init__(self, hold: _Optional[_Union[Hold, _Mapping]] = ..., replayed: _Optional[bool] = ..., stored_response: _Optional[bytes] = ..., stored_response_content_type: _Optional[str] = ..., max_stored_response_bytes: _Optional[int] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("hold_id", "items", "response_body", "response_content_type")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BODY_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    items: _containers.RepeatedCompositeFieldContainer[ChargeItem]
    response_body: bytes
    response_content_type: str
    def __init__(self, hold_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ChargeItem, _Mapping]]] = ..., response_body: _Optional[bytes] = ..., response_content_type: _Optional[str] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("hold", "balance_mc")
    HOLD_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MC_FIELD_NUMBER: _ClassVar[int]
    hold: Hold
    balance_mc: int
    def __init__(self, hold: _Optional[_Union[Hold, _Mapping]] = ..., balance_mc: _Optional[int] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("hold_id", "reason")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    reason: str
    def __init__(self, hold_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("hold",)
    HOLD_FIELD_NUMBER: _ClassVar[int]
    hold: Hold
    def __init__(self, hold: _Optional[_Union[Hold, _Mapping]] = ...) -> None: ...

class RenewHoldsRequest(_message.Message):
    __slots__ = ("hold_ids", "ttl_seconds")
    HOLD_IDS_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    hold_ids: _containers.RepeatedScalarFieldContainer[str]
    ttl_seconds: int
    def __init__(self, hold_ids: _Optional[_Iterable[str]] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class RenewHoldsResponse(_message.Message):
    __slots__ = ("holds",)
    HOLDS_FIELD_NUMBER: _ClassVar[int]
    holds: _containers.RepeatedCompositeFieldContainer[Hold]
    def __init__(self, holds: _Optional[_Iterable[_Union[Hold, _Mapping]]] = ...) -> None: ...

class GetBalanceRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetBalanceResponse(_message.Message):
    __slots__ = ("balance_mc", "held_mc", "available_mc", "premium")
    BALANCE_MC_FIELD_NUMBER: _ClassVar[int]
    HELD_MC_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MC_FIELD_NUMBER: _ClassVar[int]
    PREMIUM_FIELD_NUMBER: _ClassVar[int]
    balance_mc: int
    held_mc: int
    available_mc: int
    premium: bool
    def __init__(self, balance_mc: _Optional[int] = ..., held_mc: _Optional[int] = ..., available_mc: _Optional[int] = ..., premium: _Optional[bool] = ...) -> None: ...

class LedgerEntry(_message.Message):
    __slots__ = ("entry_id", "user_id", "amount_mc", "kind", "hold_id", "description", "balance_after_mc", "create_time")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MC_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    BALANCE_AFTER_MC_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    user_id: str
    amount_mc: int
    kind: str
    hold_id: str
    description: str
    balance_after_mc: int
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, entry_id: _Optional[str] = ..., user_id: _Optional[str] = ..., amount_mc: _Optional[int] = ..., kind: _Optional[str] = ..., hold_id: _Optional[str] = ..., description: _Optional[str] = ..., balance_after_mc: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListLedgerEntriesRequest(_message.Message):
    __slots__ = ("user_id", "page_size", "page_token")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    page_size: int
    page_token: str
    def __init__(self, user_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListLedgerEntriesResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[LedgerEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[LedgerEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateUserRequest(_message.Message):
    __slots__ = ("email", "premium")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PREMIUM_FIELD_NUMBER: _ClassVar[int]
    email: str
    premium: bool
    def __init__(self, email: _Optional[str] = ..., premium: _Optional[bool] = ...) -> None: ...

class CreateUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class GetUserRequest(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: str
    def __init__(self, user: _Optional[str] = ...) -> None: ...

class GetUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("users", "next_page_token")
    USERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    users: _containers.RepeatedCompositeFieldContainer[User]
    next_page_token: str
    def __init__(self, users: _Optional[_Iterable[_Union[User, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UpdateUserRequest(_message.Message):
    __slots__ = ("user", "premium", "disabled")
    USER_FIELD_NUMBER: _ClassVar[int]
    PREMIUM_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    user: str
    premium: bool
    disabled: bool
    def __init__(self, user: _Optional[str] = ..., premium: _Optional[bool] = ..., disabled: _Optional[bool] = ...) -> None: ...

class UpdateUserResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("key_id", "user_id", "name", "prefix", "create_time", "last_used_time", "revoke_time")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    user_id: str
    name: str
    prefix: str
    create_time: _timestamp_pb2.Timestamp
    last_used_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    def __init__(self, key_id: _Optional[str] = ..., user_id: _Optional[str] = ..., name: _Optional[str] = ..., prefix: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("user", "name")
    USER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    user: str
    name: str
    def __init__(self, user: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "secret")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    secret: str
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: str
    def __init__(self, user: _Optional[str] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys",)
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class RevokeApiKeyResponse(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class GrantCreditsRequest(_message.Message):
    __slots__ = ("user", "amount_mc", "paid_cents", "note")
    USER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MC_FIELD_NUMBER: _ClassVar[int]
    PAID_CENTS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    user: str
    amount_mc: int
    paid_cents: int
    note: str
    def __init__(self, user: _Optional[str] = ..., amount_mc: _Optional[int] = ..., paid_cents: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...

class GrantCreditsResponse(_message.Message):
    __slots__ = ("entry", "discount_percent")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_PERCENT_FIELD_NUMBER: _ClassVar[int]
    entry: LedgerEntry
    discount_percent: int
    def __init__(self, entry: _Optional[_Union[LedgerEntry, _Mapping]] = ..., discount_percent: _Optional[int] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("session_id", "user_id", "create_time", "expire_time")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    create_time: _timestamp_pb2.Timestamp
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SignUpRequest(_message.Message):
    __slots__ = ("email", "password", "client_ip")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    CLIENT_IP_FIELD_NUMBER: _ClassVar[int]
    email: str
    password: str
    client_ip: str
    def __init__(self, email: _Optional[str] = ..., password: _Optional[str] = ..., client_ip: _Optional[str] = ...) -> None: ...

class SignUpResponse(_message.Message):
    __slots__ = ("user", "verification_required")
    USER_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_REQUIRED_FIELD_NUMBER: _ClassVar[int]
    user: User
    verification_required: bool
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ..., verification_required: _Optional[bool] = ...) -> None: ...

class VerifyEmailRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class VerifyEmailResponse(_message.Message):
    __slots__ = ("user",)
    USER_FIELD_NUMBER: _ClassVar[int]
    user: User
    def __init__(self, user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class CreateSessionRequest(_message.Message):
    __slots__ = ("email", "password", "client_ip", "user_agent", "previous_session_token")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    CLIENT_IP_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    email: str
    password: str
    client_ip: str
    user_agent: str
    previous_session_token: str
    def __init__(self, email: _Optional[str] = ..., password: _Optional[str] = ..., client_ip: _Optional[str] = ..., user_agent: _Optional[str] = ..., previous_session_token: _Optional[str] = ...) -> None: ...

class CreateSessionResponse(_message.Message):
    __slots__ = ("session", "session_token", "user")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    session: Session
    session_token: str
    user: User
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., session_token: _Optional[str] = ..., user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class RevokeSessionRequest(_message.Message):
    __slots__ = ("session_token",)
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    def __init__(self, session_token: _Optional[str] = ...) -> None: ...

class RevokeSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChangePasswordRequest(_message.Message):
    __slots__ = ("session_token", "current_password", "new_password", "client_ip", "user_agent")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CURRENT_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    NEW_PASSWORD_FIELD_NUMBER: _ClassVar[int]
    CLIENT_IP_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    current_password: str
    new_password: str
    client_ip: str
    user_agent: str
    def __init__(self, session_token: _Optional[str] = ..., current_password: _Optional[str] = ..., new_password: _Optional[str] = ..., client_ip: _Optional[str] = ..., user_agent: _Optional[str] = ...) -> None: ...

class ChangePasswordResponse(_message.Message):
    __slots__ = ("session", "session_token")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session: Session
    session_token: str
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ..., session_token: _Optional[str] = ...) -> None: ...

class PasswordGrant(_message.Message):
    __slots__ = ("email", "password")
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    email: str
    password: str
    def __init__(self, email: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class IssueTokenRequest(_message.Message):
    __slots__ = ("password", "session_token", "client_ip")
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CLIENT_IP_FIELD_NUMBER: _ClassVar[int]
    password: PasswordGrant
    session_token: str
    client_ip: str
    def __init__(self, password: _Optional[_Union[PasswordGrant, _Mapping]] = ..., session_token: _Optional[str] = ..., client_ip: _Optional[str] = ...) -> None: ...

class IssuedTokens(_message.Message):
    __slots__ = ("access_token", "expires_in_seconds", "refresh_token", "refresh_expire_time", "user")
    ACCESS_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REFRESH_EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    access_token: str
    expires_in_seconds: int
    refresh_token: str
    refresh_expire_time: _timestamp_pb2.Timestamp
    user: User
    def __init__(self, access_token: _Optional[str] = ..., expires_in_seconds: _Optional[int] = ..., refresh_token: _Optional[str] = ..., refresh_expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., user: _Optional[_Union[User, _Mapping]] = ...) -> None: ...

class IssueTokenResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: IssuedTokens
    def __init__(self, tokens: _Optional[_Union[IssuedTokens, _Mapping]] = ...) -> None: ...

class RefreshTokenRequest(_message.Message):
    __slots__ = ("refresh_token",)
    REFRESH_TOKEN_FIELD_NUMBER: _ClassVar[int]
    refresh_token: str
    def __init__(self, refresh_token: _Optional[str] = ...) -> None: ...

class RefreshTokenResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: IssuedTokens
    def __init__(self, tokens: _Optional[_Union[IssuedTokens, _Mapping]] = ...) -> None: ...

class ListOwnApiKeysRequest(_message.Message):
    __slots__ = ("session_token",)
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    def __init__(self, session_token: _Optional[str] = ...) -> None: ...

class ListOwnApiKeysResponse(_message.Message):
    __slots__ = ("api_keys",)
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class CreateOwnApiKeyRequest(_message.Message):
    __slots__ = ("session_token", "name")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    name: str
    def __init__(self, session_token: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class CreateOwnApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "secret")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    secret: str
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class RevokeOwnApiKeyRequest(_message.Message):
    __slots__ = ("session_token", "key_id")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    key_id: str
    def __init__(self, session_token: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class RevokeOwnApiKeyResponse(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class Price(_message.Message):
    __slots__ = ("operation", "model", "method", "unit", "amount_mc", "minimum_mc", "premium_only", "fallback")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MC_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_MC_FIELD_NUMBER: _ClassVar[int]
    PREMIUM_ONLY_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    operation: Operation
    model: str
    method: str
    unit: PriceUnit
    amount_mc: int
    minimum_mc: int
    premium_only: bool
    fallback: bool
    def __init__(self, operation: _Optional[_Union[Operation, str]] = ..., model: _Optional[str] = ..., method: _Optional[str] = ..., unit: _Optional[_Union[PriceUnit, str]] = ..., amount_mc: _Optional[int] = ..., minimum_mc: _Optional[int] = ..., premium_only: _Optional[bool] = ..., fallback: _Optional[bool] = ...) -> None: ...

class BulkDiscount(_message.Message):
    __slots__ = ("min_credits", "percent")
    MIN_CREDITS_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    min_credits: int
    percent: int
    def __init__(self, min_credits: _Optional[int] = ..., percent: _Optional[int] = ...) -> None: ...

class GetPriceTableRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPriceTableResponse(_message.Message):
    __slots__ = ("prices", "bulk_discounts")
    PRICES_FIELD_NUMBER: _ClassVar[int]
    BULK_DISCOUNTS_FIELD_NUMBER: _ClassVar[int]
    prices: _containers.RepeatedCompositeFieldContainer[Price]
    bulk_discounts: _containers.RepeatedCompositeFieldContainer[BulkDiscount]
    def __init__(self, prices: _Optional[_Iterable[_Union[Price, _Mapping]]] = ..., bulk_discounts: _Optional[_Iterable[_Union[BulkDiscount, _Mapping]]] = ...) -> None: ...

class AcquireLeaseRequest(_message.Message):
    __slots__ = ("user_id", "target_mc", "minimum_mc", "ttl_seconds")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_MC_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_MC_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    target_mc: int
    minimum_mc: int
    ttl_seconds: int
    def __init__(self, user_id: _Optional[str] = ..., target_mc: _Optional[int] = ..., minimum_mc: _Optional[int] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class AcquireLeaseResponse(_message.Message):
    __slots__ = ("lease", "available_mc")
    LEASE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MC_FIELD_NUMBER: _ClassVar[int]
    lease: Hold
    available_mc: int
    def __init__(self, lease: _Optional[_Union[Hold, _Mapping]] = ..., available_mc: _Optional[int] = ...) -> None: ...

class LeaseCharge(_message.Message):
    __slots__ = ("hold_id", "request_id", "items", "max_mc")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MAX_MC_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    request_id: str
    items: _containers.RepeatedCompositeFieldContainer[ChargeItem]
    max_mc: int
    def __init__(self, hold_id: _Optional[str] = ..., request_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ChargeItem, _Mapping]]] = ..., max_mc: _Optional[int] = ...) -> None: ...

class ChargeLeasesRequest(_message.Message):
    __slots__ = ("charges",)
    CHARGES_FIELD_NUMBER: _ClassVar[int]
    charges: _containers.RepeatedCompositeFieldContainer[LeaseCharge]
    def __init__(self, charges: _Optional[_Iterable[_Union[LeaseCharge, _Mapping]]] = ...) -> None: ...

class LeaseChargeResult(_message.Message):
    __slots__ = ("request_id", "charged_mc", "late")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CHARGED_MC_FIELD_NUMBER: _ClassVar[int]
    LATE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    charged_mc: int
    late: bool
    def __init__(self, request_id: _Optional[str] = ..., charged_mc: _Optional[int] = ..., late: _Optional[bool] = ...) -> None: ...

class ChargeLeasesResponse(_message.Message):
    __slots__ = ("results", "leases")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[LeaseChargeResult]
    leases: _containers.RepeatedCompositeFieldContainer[Hold]
    def __init__(self, results: _Optional[_Iterable[_Union[LeaseChargeResult, _Mapping]]] = ..., leases: _Optional[_Iterable[_Union[Hold, _Mapping]]] = ...) -> None: ...
