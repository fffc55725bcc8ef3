# Upstream servers for the egress tests, on 127.0.0.1 only: HTTP and HTTPS (certificate from the
# test's own CA) with an echo endpoint, fake OpenAI- and Anthropic-compatible APIs (streaming and
# not), a WebSocket echo, a server that switches protocols for anything (h2c, /always-101), and a
# raw TCP echo. Prints one JSON line with the ports, then serves.
#   python3 egress_upstream.py CERT KEY EXPECTED_SECRET
import base64, hashlib, http.server, json, re, socket, ssl, struct, sys, threading

cert, key, expected_secret = sys.argv[1], sys.argv[2], sys.argv[3]
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status, payload, content_type="application/json"):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def sse(self, events):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for name, data in events:
            text = (f"event: {name}\n" if name else "") + f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"
            chunk = text.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self):
        if self.path.startswith("/ws") and self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        if "h2c" in self.headers.get("Upgrade", "").lower() or self.path.startswith("/always-101"):
            return self.switch()
        self.echo(b"")

    def switch(self):
        # Switches protocols for anything (h2c included), then echoes raw bytes: what an
        # uninspected pipe through the proxy would look like.
        self.send_response(101)
        self.send_header("Connection", "Upgrade")
        self.send_header("Upgrade", "h2c")
        self.end_headers()
        self.wfile.write(b"PIPE OPEN\n")
        self.wfile.flush()
        try:
            while True:
                data = self.connection.recv(4096)
                if not data:
                    break
                self.connection.sendall(b"PIPE:" + data)
        except OSError:
            pass
        self.close_connection = True

    def do_DELETE(self):
        self.echo(self.body())

    def do_PUT(self):
        self.echo(self.body())

    def echo(self, body):
        auth = self.headers.get("Authorization", "")
        # Never echo credentials back: the test checks the secret reaches the upstream only.
        self.reply(200, {"method": self.command, "path": re.sub(r"key=[^&]*", "key=<hidden>", self.path), "host": self.headers.get("Host"),
                         "authorized": auth == f"Bearer {expected_secret}", "has_authorization": bool(auth),
                         "query_key_ok": f"key={expected_secret}" in self.path.split("?", 1)[-1].split("&"), "body_bytes": len(body)})

    def do_POST(self):
        body = self.body()
        path = self.path.split("?")[0]
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            request = {}
        stream = bool(request.get("stream"))
        if path.endswith("/chat/completions"):
            usage = {"prompt_tokens": 11, "completion_tokens": 22, "total_tokens": 33}
            if stream:
                return self.sse([(None, {"model": request.get("model"), "choices": [{"delta": {"content": "Hel"}}]}),
                                 (None, {"model": request.get("model"), "choices": [{"delta": {"content": "lo"}}]}),
                                 (None, {"model": request.get("model"), "choices": [], "usage": {"prompt_tokens": 13, "completion_tokens": 2}}),
                                 (None, "[DONE]")])
            return self.reply(200, {"id": "c1", "model": request.get("model"), "choices": [{"message": {"content": "Hello"}}], "usage": usage})
        if path.endswith("/responses"):
            if stream:
                return self.sse([("response.created", {"type": "response.created", "response": {"model": request.get("model")}}),
                                 ("response.output_text.delta", {"type": "response.output_text.delta", "delta": "Hi"}),
                                 ("response.completed", {"type": "response.completed", "response": {"model": request.get("model"), "usage": {"input_tokens": 23, "output_tokens": 12}}})])
            return self.reply(200, {"id": "r1", "model": request.get("model"), "output": [], "usage": {"input_tokens": 21, "output_tokens": 9}})
        if ":generateContent" in path or ":streamGenerateContent" in path:
            model = path.rsplit("/", 1)[-1].split(":")[0]
            if "alt=sse" in self.path:
                return self.sse([(None, {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}], "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 3}, "modelVersion": model}),
                                 (None, {"candidates": [{"content": {"parts": [{"text": "lo"}]}}], "usageMetadata": {"promptTokenCount": 6, "candidatesTokenCount": 10}, "modelVersion": model})])
            return self.reply(200, {"candidates": [{"content": {"parts": [{"text": "Hello"}]}}], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 8}, "modelVersion": model})
        if path.endswith("/v1/messages"):
            if stream:
                return self.sse([("message_start", {"type": "message_start", "message": {"model": request.get("model"), "usage": {"input_tokens": 31, "output_tokens": 1}}}),
                                 ("content_block_delta", {"type": "content_block_delta", "delta": {"text": "Hi"}}),
                                 ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 17}}),
                                 ("message_stop", {"type": "message_stop"})])
            return self.reply(200, {"id": "m1", "model": request.get("model"), "content": [{"text": "Hi"}], "usage": {"input_tokens": 41, "output_tokens": 7}})
        self.echo(body)

    def websocket(self):
        accept = base64.b64encode(hashlib.sha1((self.headers["Sec-WebSocket-Key"] + GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        conn = self.connection
        def exact(n):
            data = b""
            while len(data) < n:
                part = conn.recv(n - len(data))
                if not part:
                    raise EOFError
                data += part
            return data
        try:
            while True:
                b1, b2 = exact(2)
                opcode, length = b1 & 0x0F, b2 & 0x7F
                if length == 126:
                    length = struct.unpack(">H", exact(2))[0]
                mask = exact(4)
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(exact(length)))
                if opcode == 8:
                    conn.sendall(b"\x88\x00")
                    break
                reply = b"echo:" + payload
                conn.sendall(bytes([0x80 | opcode, len(reply)]) + reply)
        except EOFError:
            pass
        self.close_connection = True

def serve_http(server):
    server.serve_forever()

plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
secure = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
secure.socket = context.wrap_socket(secure.socket, server_side=True)

raw = socket.socket()
raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
raw.bind(("127.0.0.1", 0))
raw.listen(16)

def raw_echo():
    while True:
        conn, _ = raw.accept()
        def serve(c):
            with c:
                c.sendall(b"hello from raw\n")  # the server speaks first
                while True:
                    data = c.recv(4096)
                    if not data:
                        break
                    c.sendall(data.upper())
        threading.Thread(target=serve, args=(conn,), daemon=True).start()

for target, arg in ((serve_http, plain), (serve_http, secure), (raw_echo, None)):
    threading.Thread(target=target, args=(() if arg is None else (arg,)), daemon=True).start()
print(json.dumps({"http": plain.server_address[1], "https": secure.server_address[1], "raw": raw.getsockname()[1]}), flush=True)
threading.Event().wait()
