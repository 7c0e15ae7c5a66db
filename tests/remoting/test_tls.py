"""TLS on RemotingServer and RemotingClient over real sockets on 127.0.0.1:
each ``tls.server.mode`` with TLS and plaintext clients, client
certificates, wrong CAs, encrypted keys, silent peers."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trio

from pyrocket.errors import ConfigError, RemotingError
from pyrocket.protocol.codes import RequestCode, ResponseCode
from pyrocket.protocol.command import RemotingCommand, decode, encode
from pyrocket.remoting import ClientConfig, RemotingClient, RemotingServer, ServerConfig
from pyrocket.remoting.address import split_address
from pyrocket.remoting.tls import (
    ClientAuth,
    TlsMode,
    TlsSettings,
    client_context,
)
from tests.remoting.helpers import echo, running_server, wait_until
from tests.remoting.tlscerts import TlsFiles

ROUTE = RequestCode.GET_ROUTEINFO_BY_TOPIC


@pytest.fixture
def certs(tmp_path: Path) -> TlsFiles:
    return TlsFiles.create(tmp_path)


def tls_server(tls: TlsSettings, **knobs: float) -> RemotingServer:
    server = RemotingServer(ServerConfig(tls=tls, **knobs))  # type: ignore[arg-type]
    server.register_processor(ROUTE, echo)
    return server


def request(body: bytes) -> RemotingCommand:
    return RemotingCommand.request(ROUTE, body=body).replace(ext_fields={"topic": "T"})


async def call(addr: str, tls: TlsSettings | None, body: bytes = b"hello") -> RemotingCommand:
    """One request from a new client; its RemotingError raised as it is."""
    failure: RemotingError | None = None
    async with RemotingClient(ClientConfig(tls=tls, connect_timeout=5)) as client:
        try:
            response = await client.invoke_sync(addr, request(body), 5)
        except RemotingError as exc:
            failure = exc
        else:
            stream = client.connections[addr]._stream
            assert isinstance(stream, trio.SSLStream) is (tls is not None)
    if failure is not None:
        raise failure
    return response


async def start_failure(server: RemotingServer) -> ConfigError:
    """The ConfigError ``server.serve`` fails to start with."""
    found: list[BaseException] = []
    try:
        async with running_server(server):
            pass
    except* ConfigError as group:
        found.extend(group.exceptions)
    assert found, "the server started"
    assert isinstance(found[0], ConfigError)
    return found[0]


async def test_permissive_serves_tls_and_plaintext_on_one_port(certs: TlsFiles) -> None:
    server = tls_server(certs.server_settings(TlsMode.PERMISSIVE))
    with trio.fail_after(20):
        async with running_server(server) as addr:
            tls_client = RemotingClient(ClientConfig(tls=certs.client_settings()))
            async with tls_client, RemotingClient() as plain_client:
                for i in range(3):
                    secure = await tls_client.invoke_sync(addr, request(b"s%d" % i), 5)
                    plain = await plain_client.invoke_sync(addr, request(b"p%d" % i), 5)
                    assert (secure.code, secure.body) == (ResponseCode.SUCCESS, b"s%d" % i)
                    assert (plain.code, plain.body) == (ResponseCode.SUCCESS, b"p%d" % i)
                kinds = sorted(type(c._stream).__name__ for c in server.connections)
                assert kinds == ["SSLStream", "SocketStream"]


async def test_unset_mode_with_certificate_is_permissive(certs: TlsFiles) -> None:
    server = tls_server(certs.server_settings(mode=None))
    with trio.fail_after(20):
        async with running_server(server) as addr:
            assert (await call(addr, certs.client_settings())).body == b"hello"
            assert (await call(addr, None)).body == b"hello"


async def test_enforcing_refuses_plaintext(certs: TlsFiles) -> None:
    server = tls_server(certs.server_settings(TlsMode.ENFORCING))
    with trio.fail_after(20):
        async with running_server(server) as addr:
            with pytest.raises(RemotingError):
                await call(addr, None)
            assert (await call(addr, certs.client_settings(), b"ok")).body == b"ok"


async def test_disabled_refuses_tls_client_and_serves_plaintext(certs: TlsFiles) -> None:
    server = tls_server(TlsSettings(server_mode=TlsMode.DISABLED))
    with trio.fail_after(20):
        async with running_server(server) as addr:
            with pytest.raises(RemotingError):
                await call(addr, certs.client_settings())
            assert (await call(addr, None, b"plain")).body == b"plain"


async def test_default_settings_run_without_tls() -> None:
    server = tls_server(TlsSettings())
    with trio.fail_after(20):
        async with running_server(server) as addr:
            assert (await call(addr, None, b"plain")).body == b"plain"


@pytest.mark.parametrize("mode", [TlsMode.PERMISSIVE, TlsMode.ENFORCING])
async def test_tls_server_without_certificate_refuses_to_start(mode: TlsMode) -> None:
    server = tls_server(TlsSettings(server_mode=mode, test_mode_enable=True))
    with trio.fail_after(10):
        assert "certPath" in str(await start_failure(server))


async def test_client_certificate_required(certs: TlsFiles) -> None:
    server = tls_server(certs.server_settings(TlsMode.ENFORCING, ClientAuth.REQUIRE))
    with trio.fail_after(20):
        async with running_server(server) as addr:
            with pytest.raises(RemotingError):
                await call(addr, certs.client_settings())  # no certificate
            with pytest.raises(RemotingError):
                await call(addr, certs.client_settings(pair=certs.stranger))  # another CA's
            ok = await call(addr, certs.client_settings(pair=certs.client), b"mine")
            assert ok.body == b"mine"


async def test_client_certificate_optional(certs: TlsFiles) -> None:
    server = tls_server(certs.server_settings(TlsMode.ENFORCING, ClientAuth.OPTIONAL))
    with trio.fail_after(20):
        async with running_server(server) as addr:
            assert (await call(addr, certs.client_settings(), b"anon")).body == b"anon"
            assert (await call(addr, certs.client_settings(pair=certs.client))).code == 0
            with pytest.raises(RemotingError):
                await call(addr, certs.client_settings(pair=certs.stranger))


async def test_client_certificate_not_asked_for(certs: TlsFiles) -> None:
    server = tls_server(certs.server_settings(TlsMode.ENFORCING, ClientAuth.NONE))
    with trio.fail_after(20):
        async with running_server(server) as addr:
            # Not asked for, so not sent: a stranger's certificate does not matter.
            assert (await call(addr, certs.client_settings(pair=certs.stranger))).code == 0


async def test_client_refuses_server_of_another_ca(certs: TlsFiles) -> None:
    server = tls_server(certs.server_settings(TlsMode.ENFORCING))
    with trio.fail_after(20):
        async with running_server(server) as addr:
            with pytest.raises(RemotingError, match="TLS handshake failed"):
                await call(addr, certs.client_settings(trust=certs.other_ca))
            # Without verification (Java's tls.client.authServer=false) it connects.
            assert (await call(addr, certs.client_settings(verify=False))).code == 0


def encrypted_certs(tmp_path: Path) -> TlsFiles:
    certs = TlsFiles.create(tmp_path, key_password="s3cret-pass")
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in Path(certs.server.key).read_bytes()
    return certs


async def test_encrypted_pkcs8_key(tmp_path: Path) -> None:
    certs = encrypted_certs(tmp_path)
    server = tls_server(certs.server_settings(TlsMode.ENFORCING))
    with trio.fail_after(20):
        async with running_server(server) as addr:
            assert (await call(addr, certs.client_settings(), b"enc")).body == b"enc"
    wrong = tls_server(
        TlsSettings(
            server_mode=TlsMode.ENFORCING,
            server_cert_path=certs.server.cert,
            server_key_path=certs.server.key,
            server_key_password="wrong",
        )
    )
    with trio.fail_after(10):
        assert "keyPassword" in str(await start_failure(wrong))


async def raw_connect(addr: str) -> trio.SocketStream:
    host, port = split_address(addr)
    return await trio.open_tcp_stream(host, port)


async def closed_by_peer(stream: trio.SocketStream) -> bool:
    try:
        return await stream.receive_some(1024) == b""
    except trio.BrokenResourceError:
        return True


async def test_silent_tls_peer_times_out_without_affecting_others(certs: TlsFiles) -> None:
    server = tls_server(certs.server_settings(TlsMode.PERMISSIVE), tls_handshake_timeout=0.5)
    with trio.fail_after(20):
        async with running_server(server) as addr:
            stalled = await raw_connect(addr)
            await stalled.send_all(b"\x16\x03\x01")  # a ClientHello that never ends
            start = trio.current_time()
            # Others are served meanwhile, TLS and plaintext.
            assert (await call(addr, certs.client_settings(), b"a")).body == b"a"
            assert (await call(addr, None, b"b")).body == b"b"
            assert await closed_by_peer(stalled)
            assert trio.current_time() - start >= 0.4
            await stalled.aclose()


async def test_enforcing_gives_a_silent_peer_the_handshake_timeout(certs: TlsFiles) -> None:
    server = tls_server(certs.server_settings(TlsMode.ENFORCING), tls_handshake_timeout=0.3)
    with trio.fail_after(20):
        async with running_server(server) as addr:
            silent = await raw_connect(addr)
            start = trio.current_time()
            assert await closed_by_peer(silent)
            assert trio.current_time() - start >= 0.25
            await silent.aclose()
            assert server.connections == frozenset()


async def test_permissive_plaintext_first_byte_is_not_lost(certs: TlsFiles) -> None:
    server = tls_server(certs.server_settings(TlsMode.PERMISSIVE))
    with trio.fail_after(20):
        async with running_server(server) as addr:
            stream = await raw_connect(addr)
            frame = encode(request(b"byte by byte").replace(opaque=7))
            for i in range(len(frame)):  # the peeked byte alone, then the rest
                await stream.send_all(frame[i : i + 1])
                if i == 0:
                    await trio.sleep(0.05)
            await wait_until(lambda: len(server.connections) == 1)
            data = b""
            while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
                data += await stream.receive_some()
            response = decode(data)
            assert (response.opaque, response.body) == (7, b"byte by byte")
            await stream.aclose()


async def test_server_certificate_from_tls_config_file(certs: TlsFiles, tmp_path: Path) -> None:
    conf = tmp_path / "tls.properties"
    conf.write_text(
        f"tls.server.certPath={certs.server.cert}\ntls.server.keyPath={certs.server.key}\n"
    )
    server = tls_server(TlsSettings(server_mode=TlsMode.ENFORCING, config_file=str(conf)))
    with trio.fail_after(20):
        async with running_server(server) as addr:
            assert (await call(addr, certs.client_settings(), b"file")).body == b"file"
            with pytest.raises(RemotingError):
                await call(addr, None)


async def test_changed_certificate_files_are_reloaded(certs: TlsFiles, tmp_path: Path) -> None:
    server = tls_server(certs.server_settings(TlsMode.ENFORCING), tls_watch_interval=0.05)
    other = TlsFiles.create(tmp_path / "new")
    with trio.fail_after(20):
        async with running_server(server) as addr:
            assert (await call(addr, certs.client_settings())).code == 0
            # The key first: a key that does not match the certificate does not load.
            await trio.to_thread.run_sync(rewrite, other.server.key, certs.server.key)
            await trio.sleep(0.2)
            assert (await call(addr, certs.client_settings())).code == 0
            await trio.to_thread.run_sync(rewrite, other.server.cert, certs.server.cert)
            while True:
                try:
                    await call(addr, certs.client_settings(trust=other.ca))
                    break
                except RemotingError:
                    await trio.sleep(0.05)
            with pytest.raises(RemotingError):
                await call(addr, certs.client_settings())


def rewrite(source: str, target: str) -> None:
    Path(target + ".tmp").write_bytes(Path(source).read_bytes())
    Path(target + ".tmp").replace(target)


def test_settings_from_properties_and_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "tls.properties"
    conf.write_text(
        "tls.server.mode=disabled\n"  # not taken from the file, as in Java
        "tls.server.need.client.auth=REQUIRE\n"
        "tls.server.certPath=/from/file.pem\n"
        "tls.client.authServer=true\n"
        "tls.server.keyPassword=pw\n"
    )
    settings = TlsSettings().with_properties(
        {
            "tls.server.mode": "Enforcing",
            "tls.config.file": str(conf),
            "tls.server.certPath": "/from/conf.pem",
            "tls.server.keyPath": "/k.pem",
            "brokerName": "ignored",
        }
    )
    assert settings.server_mode is TlsMode.ENFORCING
    resolved = settings.with_config_file()
    assert resolved.server_mode is TlsMode.ENFORCING
    assert resolved.server_need_client_auth is ClientAuth.REQUIRE
    assert resolved.server_cert_path == "/from/file.pem"
    assert resolved.server_key_path == "/k.pem"
    assert resolved.client_auth_server is True
    assert "pw" not in resolved.describe() and "pw" not in repr(resolved)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("tls.server.mode", "strict"),
        ("tls.server.need.client.auth", "required"),
        ("tls.client.authServer", "yes"),
    ],
)
def test_bad_values_are_refused(key: str, value: str) -> None:
    with pytest.raises(ConfigError, match=key):
        TlsSettings().with_properties({key: value})


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    settings = TlsSettings(config_file=str(tmp_path / "missing.properties"))
    with pytest.raises(ConfigError, match=r"missing\.properties"):
        settings.with_config_file()


def test_client_context_verifies_when_told(certs: TlsFiles) -> None:
    assert client_context(certs.client_settings()).verify_mode == ssl.CERT_REQUIRED
    assert client_context(certs.client_settings(verify=False)).verify_mode == ssl.CERT_NONE
