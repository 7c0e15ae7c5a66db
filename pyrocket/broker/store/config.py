"""The message store's configuration (Java's ``MessageStoreConfig``).

Every Java property is here under its snake_case name, with Java's default,
so that a ``broker.conf`` loads as it does into a Java broker and
GET_BROKER_CONFIG can list the same keys. :data:`JAVA_KEYS` maps each Java
key to its attribute; :meth:`MessageStoreConfig.from_java_properties` parses
values as Java's ``MixAll.properties2Object`` would, except that a value that
does not parse is a :class:`ConfigError` naming the key (Java ignores it
silently) and surrounding whitespace is stripped (Java keeps trailing blanks
and then fails to parse the number).

One deliberate difference: ``storePathCommitLog`` defaults to
``<storePathRootDir>/commitlog``. Java 4.7.0 defaults it to
``~/store/commitlog`` whatever the root, which later Java versions fixed.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

from pyrocket.errors import ConfigError
from pyrocket.javaprops import JavaLong, apply_properties, java_keys, object_properties, prop

#: One consume-queue entry: commit-log offset i64, size i32, tags code i64.
CQ_STORE_UNIT_SIZE: Final = 20


class FlushDiskType(enum.Enum):
    SYNC_FLUSH = "SYNC_FLUSH"
    ASYNC_FLUSH = "ASYNC_FLUSH"


class BrokerRole(enum.Enum):
    ASYNC_MASTER = "ASYNC_MASTER"
    SYNC_MASTER = "SYNC_MASTER"
    SLAVE = "SLAVE"


def _home_store() -> str:
    return str(Path.home() / "store")


@dataclass(frozen=True, slots=True)
class MessageStoreConfig:
    """Store settings, Java names in snake_case, Java defaults.

    Times are milliseconds unless the name says otherwise
    (``file_reserved_time`` is hours). Settings of Java features pyrocket's
    store does not have (HA, DLedger, transient store pool) are
    kept so configurations round-trip; switching DLedger or the transient
    store pool on is refused (a ConfigError naming the key).
    """

    store_path_root_dir: str = prop(factory=_home_store)
    store_path_commit_log: str | None = None
    mapped_file_size_commit_log: int = 1024 * 1024 * 1024
    mapped_file_size_consume_queue: int = 300000 * CQ_STORE_UNIT_SIZE
    enable_consume_queue_ext: bool = False
    mapped_file_size_consume_queue_ext: int = 48 * 1024 * 1024
    bit_map_length_consume_queue_ext: int = 64
    flush_interval_commit_log: int = 500
    commit_interval_commit_log: int = 200
    use_reentrant_lock_when_put_message: bool = False
    flush_commit_log_timed: bool = False
    flush_interval_consume_queue: int = 1000
    clean_resource_interval: int = 10000
    delete_commit_log_files_interval: int = 100
    delete_consume_queue_files_interval: int = 100
    destroy_maped_file_interval_forcibly: int = 1000 * 120
    redelete_hanged_file_interval: int = 1000 * 120
    delete_when: str = prop("04", runtime=True)
    disk_max_used_space_ratio: int = prop(75, runtime=True)
    file_reserved_time: int = prop(72, runtime=True)
    put_msg_index_hight_water: int = 600000
    max_message_size: int = prop(1024 * 1024 * 4, runtime=True)
    check_crc_on_recover: bool = prop(True, key="checkCRCOnRecover")
    flush_commit_log_least_pages: int = 4
    commit_commit_log_least_pages: int = 4
    flush_least_pages_when_warm_maped_file: int = 1024 // 4 * 16
    flush_consume_queue_least_pages: int = 2
    flush_commit_log_thorough_interval: int = 1000 * 10
    commit_commit_log_thorough_interval: int = 200
    flush_consume_queue_thorough_interval: int = 1000 * 60
    max_transfer_bytes_on_message_in_memory: int = prop(1024 * 256, runtime=True)
    max_transfer_count_on_message_in_memory: int = prop(32, runtime=True)
    max_transfer_bytes_on_message_in_disk: int = prop(1024 * 64, runtime=True)
    max_transfer_count_on_message_in_disk: int = prop(8, runtime=True)
    access_message_in_memory_max_ratio: int = 40
    message_index_enable: bool = True
    max_hash_slot_num: int = 5000000
    max_index_num: int = 5000000 * 4
    max_msgs_num_batch: int = 64
    message_index_safe: bool = False
    ha_listen_port: int = 10912
    ha_send_heartbeat_interval: int = 1000 * 5
    ha_housekeeping_interval: int = 1000 * 20
    ha_transfer_batch_size: int = 1024 * 32
    ha_master_address: str | None = None
    ha_slave_fallbehind_max: int = 1024 * 1024 * 256
    broker_role: BrokerRole = BrokerRole.ASYNC_MASTER
    flush_disk_type: FlushDiskType = FlushDiskType.ASYNC_FLUSH
    sync_flush_timeout: int = prop(1000 * 5, runtime=True)
    message_delay_level: str = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"
    flush_delay_offset_interval: JavaLong = 1000 * 10
    clean_file_forcibly_enable: bool = prop(True, runtime=True)
    warm_maped_file_enable: bool = False
    offset_check_in_slave: bool = False
    debug_lock_enable: bool = False
    duplication_enable: bool = False
    disk_fall_recorded: bool = True
    os_page_cache_busy_time_out_mills: JavaLong = 1000
    default_query_max_num: int = 32
    transient_store_pool_enable: bool = False
    transient_store_pool_size: int = 5
    fast_fail_if_no_buffer_in_store_pool: bool = False
    enable_d_leger_commit_log: bool = False
    d_leger_group: str | None = None
    d_leger_peers: str | None = None
    d_leger_self_id: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    # -- derived values, as Java's getters compute them ---------------------

    @property
    def commit_log_dir(self) -> Path:
        if self.store_path_commit_log is not None:
            return Path(self.store_path_commit_log)
        return Path(self.store_path_root_dir) / "commitlog"

    @property
    def root_dir(self) -> Path:
        return Path(self.store_path_root_dir)

    @property
    def consume_queue_file_size(self) -> int:
        """``getMappedFileSizeConsumeQueue``: rounded up to whole entries."""
        units = -(-self.mapped_file_size_consume_queue // CQ_STORE_UNIT_SIZE)
        return units * CQ_STORE_UNIT_SIZE

    @property
    def disk_max_used_space_ratio_clamped(self) -> int:
        """``getDiskMaxUsedSpaceRatio``: kept within [10, 95]."""
        return min(95, max(10, self.disk_max_used_space_ratio))

    @property
    def delete_when_hours(self) -> tuple[int, ...]:
        """The hours of ``deleteWhen`` (``"04;12"`` -> (4, 12))."""
        return tuple(int(part) for part in self.delete_when.split(";") if part.strip())

    @property
    def delay_levels_ms(self) -> tuple[int, ...]:
        """Delay of each level, level 1 first (``parseDelayLevel``)."""
        return parse_delay_levels(self.message_delay_level)

    # -- checks and conversions --------------------------------------------

    def validate(self) -> None:
        """Reject values the store cannot run with. Raises ConfigError naming
        the Java key."""
        positive = {
            "mappedFileSizeCommitLog": self.mapped_file_size_commit_log,
            "mappedFileSizeConsumeQueue": self.mapped_file_size_consume_queue,
            "maxMessageSize": self.max_message_size,
            "flushIntervalCommitLog": self.flush_interval_commit_log,
            "flushIntervalConsumeQueue": self.flush_interval_consume_queue,
            "cleanResourceInterval": self.clean_resource_interval,
            "syncFlushTimeout": self.sync_flush_timeout,
            "flushDelayOffsetInterval": self.flush_delay_offset_interval,
            "maxTransferCountOnMessageInMemory": self.max_transfer_count_on_message_in_memory,
            "maxTransferCountOnMessageInDisk": self.max_transfer_count_on_message_in_disk,
        }
        for key, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{key}={value}: must be positive")
        # Durability features pyrocket lacks: refuse rather than run without.
        for key, feature, on in (
            ("enableDLegerCommitLog", "the DLedger commit log", self.enable_d_leger_commit_log),
            (
                "transientStorePoolEnable",
                "the transient store pool",
                self.transient_store_pool_enable,
            ),
        ):
            if on:
                raise ConfigError(
                    f"{key}=true: pyrocket does not implement {feature} and will not run "
                    f"without it; remove {key} or set it to false"
                )
        if self.file_reserved_time < 0:
            raise ConfigError(f"fileReservedTime={self.file_reserved_time}: must not be negative")
        try:
            hours = self.delete_when_hours
        except ValueError:
            raise ConfigError(
                f"deleteWhen={self.delete_when}: expected hours separated by ';'"
            ) from None
        if any(not 0 <= hour <= 23 for hour in hours):
            raise ConfigError(f"deleteWhen={self.delete_when}: hours are 0 to 23")
        try:
            parse_delay_levels(self.message_delay_level)
        except ValueError as exc:
            raise ConfigError(f"messageDelayLevel={self.message_delay_level}: {exc}") from None

    @classmethod
    def from_java_properties(
        cls, properties: Mapping[str, str], *, base: MessageStoreConfig | None = None
    ) -> Self:
        """A config with every known Java key of ``properties`` applied (keys
        of other config classes are ignored). Raises ConfigError naming the
        key of a value that does not parse or does not validate."""
        start = base if base is not None else cls()
        changed: Self = apply_properties(start, properties)
        return changed

    def to_java_properties(self) -> dict[str, str]:
        """Java key -> value text for every set value, in Java's field order,
        formatted as Java's ``toString`` (``true``, ``ASYNC_FLUSH``);
        ``storePathCommitLog`` is the directory the store uses."""
        resolved = dataclasses.replace(self, store_path_commit_log=str(self.commit_log_dir))
        return dict(object_properties(resolved))


#: Java property key -> MessageStoreConfig attribute, in Java's field order.
JAVA_KEYS: Final[Mapping[str, str]] = {
    key: spec.attr for key, spec in java_keys(MessageStoreConfig).items()
}


def parse_java_value(key: str, text: str) -> Any:
    """Parse the text of Java property ``key`` to its attribute's type.

    Raises ConfigError naming the key for an unknown key or a bad value.
    """
    spec = java_keys(MessageStoreConfig).get(key)
    if spec is None:
        raise ConfigError(f"{key}: not a message store setting")
    return spec.parse(text)


_DELAY_UNITS = {"s": 1000, "m": 60 * 1000, "h": 60 * 60 * 1000, "d": 24 * 60 * 60 * 1000}


def parse_delay_levels(text: str) -> tuple[int, ...]:
    """``"1s 5s 1m"`` -> (1000, 5000, 60000). Raises ValueError."""
    levels: list[int] = []
    for item in text.split(" "):
        unit = _DELAY_UNITS.get(item[-1:])
        if unit is None or not item[:-1].isdigit():
            raise ValueError(f"delay level {item!r} is not a number followed by s, m, h or d")
        levels.append(int(item[:-1]) * unit)
    return tuple(levels)
