"""A tap on the link between devices and the aggregator: the bytes each way, as sent."""

import contextlib
import socket
import threading
from typing import Self

__all__ = ["Tap"]


class Tap:
    """A TCP relay on loopback that forwards every byte to `upstream` (`host:port`) and keeps
    a copy of what each side sent: `uplink` from the clients, `downlink` to them. Leaving the
    `with` block cuts every connection through it.

    Start clients towards `address` to measure what federated training costs the link, or to
    check what leaves a device:

        with Federation(workdir, config) as federation, Tap(federation.address) as tap:
            federation.add_client(windows, via=tap.address)
            federation.run()
        len(tap.uplink)
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        # Accept wakes up now and then to see whether the relay closed: a socket closed by
        # another thread does not end a blocking accept.
        self._listener.settimeout(0.2)
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.uplink = bytearray()
        self.downlink = bytearray()
        self._lock = threading.Lock()
        self._open = True
        self._sockets: list[socket.socket] = []
        self._pumps: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Self:
        self._acceptor.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._open = False
        self._acceptor.join()
        self._listener.close()
        for end in self._sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        for pump in self._pumps:
            pump.join(timeout=10)
        for end in self._sockets:
            end.close()

    def _accept(self) -> None:
        while self._open:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            try:
                server = socket.create_connection(self._upstream)
            except OSError:  # upstream gone: the client sees its connection close
                client.close()
                continue
            self._sockets += [client, server]
            for source, sink, copy in (
                (client, server, self.uplink),
                (server, client, self.downlink),
            ):
                pump = threading.Thread(target=self._pump, args=(source, sink, copy), daemon=True)
                self._pumps.append(pump)
                pump.start()

    def _pump(self, source: socket.socket, sink: socket.socket, copy: bytearray) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                with self._lock:
                    copy.extend(chunk)
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
