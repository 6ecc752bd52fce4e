"""A WebSocket echo server for the gantry-lb tests: Python standard library only, one thread per
connection, loopback only.

    server = WebSocketEchoServer(greeting=b"hello")   # started; server.address is "127.0.0.1:PORT"
    ...
    server.stop()

It answers an Upgrade: websocket request (RFC 6455 4.2) with 101 and the Sec-WebSocket-Accept the
key asks for, sends the greeting as a text frame in the same write as the 101 head (so a proxy
must pass on bytes that arrive behind the head), then echoes every text or binary frame back with
the same opcode, unmasked as a server must. A ping gets a pong; a close frame is answered with a
close frame carrying the same payload, and then the server closes the connection. A request that
is not an upgrade gets 400. It records each request head it received in `heads`, and in `frames`
the payload of every data frame it received, so that tests can check what the proxy forwarded.
"""
import base64
import hashlib
import socket
import struct
import threading

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (both as str)."""
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def encode_frame(opcode, payload, mask=None):
    """One final frame; masked with the 4-byte key when mask is given (clients must mask)."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if mask is None:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class FrameReader:
    """Reads frames from a socket: read() returns (fin, opcode, masked, payload unmasked)."""

    def __init__(self, sock, buffer=b""):
        self.sock = sock
        self.buffer = buffer

    def _need(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed in the middle of a frame")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read(self):
        b0, b1 = self._need(2)
        fin, opcode = bool(b0 & 0x80), b0 & 0x0F
        masked, n = bool(b1 & 0x80), b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        mask = self._need(4) if masked else None
        payload = self._need(n)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return fin, opcode, masked, payload


class WebSocketEchoServer:
    def __init__(self, greeting=b""):
        self.greeting = greeting
        self.heads = []
        self.frames = []
        self.unmasked_frames = 0  # frames from the client that were not masked: a protocol error
        self._lock = threading.Lock()
        self._conns = []
        self._stopping = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.address = "127.0.0.1:%d" % self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._stopping:
                    conn.close()
                    return
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            self._handshake_and_echo(conn)
        except (OSError, EOFError):
            pass
        finally:
            conn.close()

    def _handshake_and_echo(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        text = head.decode("latin-1")
        with self._lock:
            self.heads.append(text)
        headers = {}
        for line in text.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        tokens = [t.strip().lower() for t in headers.get("connection", "").split(",")]
        if (headers.get("upgrade", "").lower() != "websocket" or "upgrade" not in tokens
                or "sec-websocket-key" not in headers):
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\n"
                         b"Connection: close\r\n\r\nnot upgrade")
            return
        response = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                    % accept_key(headers["sec-websocket-key"])).encode()
        if self.greeting:
            response += encode_frame(0x1, self.greeting)
        conn.sendall(response)
        reader = FrameReader(conn, rest)
        while True:
            _, opcode, masked, payload = reader.read()
            if not masked:
                with self._lock:
                    self.unmasked_frames += 1
            if opcode in (0x1, 0x2):
                with self._lock:
                    self.frames.append(payload)
                conn.sendall(encode_frame(opcode, payload))
            elif opcode == 0x9:
                conn.sendall(encode_frame(0xA, payload))
            elif opcode == 0x8:
                conn.sendall(encode_frame(0x8, payload))
                return

    def stop(self):
        with self._lock:
            self._stopping = True
            conns, self._conns = self._conns, []
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        except OSError:
            pass
        self._listener.close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
