"""HTTP/2 settings as h2.settings offers them: SettingCodes, ChangedSetting, Settings.

A :class:`Settings` holds each setting's value in force and the values proposed after it
and not acknowledged yet (RFC 9113 6.5.3: a value takes effect once the peer
acknowledges it); :meth:`Settings.acknowledge` moves each one proposed value forward.
"""
from __future__ import annotations

from typing import Any

import collections
import enum
from collections.abc import MutableMapping

from .errors import ErrorCodes, _member_or_int
from .exceptions import InvalidSettingsValueError

__all__ = ["ChangedSetting", "SettingCodes", "Settings"]


class SettingCodes(enum.IntEnum):
    """The known SETTINGS parameters (RFC 9113 6.5.2, RFC 8441 3)."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6
    ENABLE_CONNECT_PROTOCOL = 0x8


def _setting_code_from_int(code: int) -> Any:
    """A SettingCodes member for a known id, else the int itself."""
    return _member_or_int(SettingCodes, code)


class ChangedSetting:
    """One setting that changed: its code, the value before and the value now."""

    __slots__ = ("setting", "original_value", "new_value")

    def __init__(self, setting: Any, original_value: Any, new_value: Any) -> None:
        self.setting = setting
        self.original_value = original_value
        self.new_value = new_value

    def __repr__(self) -> str:
        return "ChangedSetting(setting=%s, original_value=%s, new_value=%s)" % (
            self.setting, self.original_value, self.new_value)


def _invalid(setting: Any, value: Any, client: Any=None) -> Any:
    """The error code a value out of its setting's range earns, or NO_ERROR (0).
    ``client``: the role of the peer that sent it, when it was received."""
    if setting == SettingCodes.ENABLE_PUSH:
        # 6.5.2: only 0 and 1; a server never sends 1 ("A client MUST treat receipt of
        # a SETTINGS frame with SETTINGS_ENABLE_PUSH set to 1 as a connection error").
        if value not in (0, 1) or (client is False and value != 0):
            return ErrorCodes.PROTOCOL_ERROR
    elif setting == SettingCodes.INITIAL_WINDOW_SIZE:
        if not 0 <= value <= 2**31 - 1:
            return ErrorCodes.FLOW_CONTROL_ERROR
    elif setting == SettingCodes.MAX_FRAME_SIZE:
        if not 2**14 <= value <= 2**24 - 1:
            return ErrorCodes.PROTOCOL_ERROR
    elif setting == SettingCodes.MAX_HEADER_LIST_SIZE:
        if value < 0:
            return ErrorCodes.PROTOCOL_ERROR
    elif setting == SettingCodes.ENABLE_CONNECT_PROTOCOL:
        if value not in (0, 1):
            return ErrorCodes.PROTOCOL_ERROR
    return ErrorCodes.NO_ERROR


def _check(setting: Any, value: Any, client: Any=None) -> Any:
    code = _invalid(setting, value, client)
    if code:
        raise InvalidSettingsValueError("Setting %s has invalid value %s" % (setting, value),
                                        error_code=code)


class Settings(MutableMapping[Any, int]):
    """One side's settings: ``settings[code]`` is the value in force; assigning proposes
    a new one (in force after :meth:`acknowledge`). ``client`` gives the defaults of
    that role (ENABLE_PUSH 1 for a client); ``initial_values`` replaces defaults."""

    def __init__(self, client: bool = True, initial_values: Any=None) -> None:
        self._client = client
        self._settings: dict[Any, collections.deque[Any]] = {
            SettingCodes.HEADER_TABLE_SIZE: collections.deque([4096]),
            SettingCodes.ENABLE_PUSH: collections.deque([int(client)]),
            SettingCodes.INITIAL_WINDOW_SIZE: collections.deque([65535]),
            SettingCodes.MAX_FRAME_SIZE: collections.deque([16384]),
            SettingCodes.ENABLE_CONNECT_PROTOCOL: collections.deque([0]),
        }
        for key, value in (initial_values or {}).items():
            _check(key, value)
            self._settings[key] = collections.deque([value])

    def acknowledge(self) -> Any:
        """The proposed values were acknowledged: the oldest of each takes effect.
        Returns ``{code: ChangedSetting}`` for those."""
        changed = {}
        for key, values in self._settings.items():
            if len(values) > 1:
                old = values.popleft()
                changed[key] = ChangedSetting(key, old, values[0])
        return changed

    def _pending(self) -> Any:
        """{code: value} proposed and not acknowledged (the newest of each)."""
        return {k: v[-1] for k, v in self._settings.items() if len(v) > 1}

    @property
    def header_table_size(self) -> int:
        """SETTINGS_HEADER_TABLE_SIZE in force."""
        return self[SettingCodes.HEADER_TABLE_SIZE]

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        self[SettingCodes.HEADER_TABLE_SIZE] = value

    @property
    def enable_push(self) -> int:
        """SETTINGS_ENABLE_PUSH in force."""
        return self[SettingCodes.ENABLE_PUSH]

    @enable_push.setter
    def enable_push(self, value: int) -> None:
        self[SettingCodes.ENABLE_PUSH] = value

    @property
    def initial_window_size(self) -> int:
        """SETTINGS_INITIAL_WINDOW_SIZE in force."""
        return self[SettingCodes.INITIAL_WINDOW_SIZE]

    @initial_window_size.setter
    def initial_window_size(self, value: int) -> None:
        self[SettingCodes.INITIAL_WINDOW_SIZE] = value

    @property
    def max_frame_size(self) -> int:
        """SETTINGS_MAX_FRAME_SIZE in force."""
        return self[SettingCodes.MAX_FRAME_SIZE]

    @max_frame_size.setter
    def max_frame_size(self, value: int) -> None:
        self[SettingCodes.MAX_FRAME_SIZE] = value

    @property
    def max_concurrent_streams(self) -> int:
        """SETTINGS_MAX_CONCURRENT_STREAMS in force (2**32+1 when never set: unlimited)."""
        return self.get(SettingCodes.MAX_CONCURRENT_STREAMS, 2**32 + 1)

    @max_concurrent_streams.setter
    def max_concurrent_streams(self, value: int) -> None:
        self[SettingCodes.MAX_CONCURRENT_STREAMS] = value

    @property
    def max_header_list_size(self) -> Any:
        """SETTINGS_MAX_HEADER_LIST_SIZE in force, or None (unlimited)."""
        return self.get(SettingCodes.MAX_HEADER_LIST_SIZE, None)

    @max_header_list_size.setter
    def max_header_list_size(self, value: int) -> None:
        self[SettingCodes.MAX_HEADER_LIST_SIZE] = value

    @property
    def enable_connect_protocol(self) -> int:
        """SETTINGS_ENABLE_CONNECT_PROTOCOL in force."""
        return self[SettingCodes.ENABLE_CONNECT_PROTOCOL]

    @enable_connect_protocol.setter
    def enable_connect_protocol(self, value: int) -> None:
        self[SettingCodes.ENABLE_CONNECT_PROTOCOL] = value

    def __getitem__(self, key: Any) -> int:
        value = self._settings[key][0]
        if value is None:   # proposed, never in force
            raise KeyError(key)
        return int(value)

    def __setitem__(self, key: Any, value: Any) -> None:
        _check(key, value)
        values = self._settings.get(key)
        if values is None:
            values = self._settings[key] = collections.deque([None])
        values.append(value)

    def _propose(self, key: Any, value: int) -> None:
        """Append a proposed value unchecked (the engine checks what the peer sent)."""
        values = self._settings.get(key)
        if values is None:
            values = self._settings[key] = collections.deque([None])
        values.append(value)

    def validate_received_setting(self, setting: Any, value: Any) -> None:
        """Raise InvalidSettingsValueError if the peer that owns these settings may not
        send this value (a server's ENABLE_PUSH must be 0)."""
        _check(setting, value, client=self._client)

    def __delitem__(self, key: Any) -> None:
        del self._settings[key]

    def __iter__(self) -> Any:
        return iter(self._settings)

    def __len__(self) -> int:
        return len(self._settings)

    def __eq__(self, other: Any) -> Any:
        if isinstance(other, Settings):
            return self._settings == other._settings
        return NotImplemented

    def __ne__(self, other: Any) -> Any:
        if isinstance(other, Settings):
            return self._settings != other._settings
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]
