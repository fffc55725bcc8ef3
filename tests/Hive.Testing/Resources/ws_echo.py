# A minimal WebSocket echo server (RFC 6455, text and binary, no extensions) inside the sandbox,
# written out because the image has no WebSocket library. Used by McpTests.
import base64, hashlib, socket, struct, sys, threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data

def serve(conn):
    try:
        request = b""
        while b"\r\n\r\n" not in request:
            request += conn.recv(4096)
        headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in request.decode().split("\r\n")[1:] if ":" in l)}
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest()).decode()
        conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        while True:
            b1, b2 = recv_exact(conn, 2)
            opcode, length = b1 & 0x0F, b2 & 0x7F
            if length == 126:
                length = struct.unpack(">H", recv_exact(conn, 2))[0]
            elif length == 127:
                length = struct.unpack(">Q", recv_exact(conn, 8))[0]
            mask = recv_exact(conn, 4) if b2 & 0x80 else b"\0\0\0\0"
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(recv_exact(conn, length)))
            if opcode == 8:
                conn.sendall(b"\x88\x02" + payload[:2])
                return
            if opcode in (1, 2):
                reply = payload if opcode == 2 else ("echo: " + payload.decode()).encode()
                header = bytes([0x80 | opcode]) + (bytes([len(reply)]) if len(reply) < 126 else b"\x7e" + struct.pack(">H", len(reply)))
                conn.sendall(header + reply)
    except (EOFError, OSError):
        pass
    finally:
        conn.close()

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
while True:
    connection, _ = server.accept()
    threading.Thread(target=serve, args=(connection,), daemon=True).start()
