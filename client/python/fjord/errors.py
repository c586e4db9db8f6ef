"""Exceptions of the Fjord Python client (named like kafka-python's kafka.errors),
and error_info(), which reads the fjord.v1.ErrorInfo a broker attaches to a failed
call.

Calls that fail at the broker raise grpc.RpcError, as they always have; the
exceptions here are for what the client itself decides.
"""

from google.protobuf import any_pb2

from fjord import _stubs

_stubs.ensure_generated()

from fjord.v1 import record_pb2  # noqa: E402

ErrorInfo = record_pb2.ErrorInfo

# The trailer in which gRPC carries a google.rpc.Status with error details.
_DETAILS_KEY = "grpc-status-details-bin"
_ERROR_INFO_TYPE = "fjord.v1.ErrorInfo"


class FjordError(Exception):
    """Base class of the client's own errors."""


class IllegalStateError(FjordError):
    """The call does not fit the consumer's state (e.g. seek() on a partition it
    does not own, commit() without a group_id)."""


class CommitFailedError(FjordError):
    """The group refused a commit because the member no longer owns the
    partitions (it was removed or fenced, or they moved to another member).
    Nothing was committed; the records since the last commit will be read
    again by the partitions' next owner."""


class NoOffsetForPartitionError(FjordError):
    """auto_offset_reset='none' and the group has no committed offset for a
    partition it was given (or the committed offset is out of range)."""


def _varint(buf, i):
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _status_details(buf):
    """The `details` (field 3, google.protobuf.Any) of a serialized
    google.rpc.Status. Hand-decoded: Debian's Python has no google.rpc module."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(buf, i)
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        elif wire == 2:
            n, i = _varint(buf, i)
            if field == 3:
                yield any_pb2.Any.FromString(bytes(buf[i:i + n]))
            i += n
        else:
            return


def error_info(error):
    """The fjord.v1.ErrorInfo of a grpc.RpcError; reason REASON_UNSPECIFIED when
    the broker sent none (e.g. the connection failed)."""
    try:
        trailers = error.trailing_metadata() or ()
    except Exception:  # not an RPC error with trailers
        trailers = ()
    for key, value in trailers:
        if key != _DETAILS_KEY:
            continue
        try:
            for detail in _status_details(value):
                if detail.type_url.rsplit("/", 1)[-1] == _ERROR_INFO_TYPE:
                    return ErrorInfo.FromString(detail.value)
        except Exception:  # a malformed trailer is no reason to fail differently
            pass
    return ErrorInfo()


def reason_name(info):
    """The reason's name, e.g. 'NOT_COORDINATOR'."""
    try:
        return ErrorInfo.Reason.Name(info.reason)
    except ValueError:
        return str(info.reason)

