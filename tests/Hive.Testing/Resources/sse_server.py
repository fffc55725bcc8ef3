# A tiny server inside the sandbox: GET /events sends one Server-Sent Event, waits until /tmp/go
# exists, then sends two more; GET / answers "hello from port N". Used by McpTests to prove that
# sandbox.url streams (the first event arrives while the response is still open).
import http.server, os, sys, time

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.startswith("/events"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(3):
                self.wfile.write(f"id: {i}\ndata: tick {i}\n\n".encode())
                self.wfile.flush()
                while i == 0 and not os.path.exists("/tmp/go"):
                    time.sleep(0.05)
            self.close_connection = True
            return
        body = f"hello from port {sys.argv[1]} path {self.path} auth={self.headers.get('Authorization')}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(201)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[::-1])

    def log_message(self, *args):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
