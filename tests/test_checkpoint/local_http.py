"""A small HTTP file server on 127.0.0.1 for download tests: serves bytes
from a dict, honours ``Range: bytes=a-``, records every request's path and
Range header, and can misbehave on purpose (drop the connection midway,
answer with an error, ignore Range, omit Content-Length)."""
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Union


def direct_connections(monkeypatch) -> None:
    """Talk to 127.0.0.1 directly whatever proxy the machine sets."""
    for var in ('http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY',
                'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('no_proxy', '*')


class LocalFileServer:
    """``with LocalFileServer({'/a.pth': data}) as server: server.url('/a.pth')``.

    Attributes:
        files (dict): URL path -> bytes served.
        requests (list): ``(path, Range header or None)`` per request.
        plan (list): What the next requests get, one item each, consumed
            in order (then normal answers): ``None`` a normal answer, an
            ``int`` n the headers of the normal answer but only n body
            bytes before the connection closes, ``'503'`` an error.
        ignore_range (bool): Answer 200 with the whole file to a Range.
        content_length (bool): Send ``Content-Length`` (else the body ends
            when the connection closes).
    """

    def __init__(self, files: Dict[str, bytes]):
        self.files = dict(files)
        self.requests: List[tuple] = []
        self.plan: List[Optional[Union[int, str]]] = []
        self.ignore_range = False
        self.content_length = True
        server = self

        class Handler(BaseHTTPRequestHandler):

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):
                rng = self.headers.get('Range')
                server.requests.append((self.path, rng))
                action = server.plan.pop(0) if server.plan else None
                if action == '503':
                    self.send_error(503)
                    return
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                match = re.fullmatch(r'bytes=(\d+)-', rng or '')
                if match and not server.ignore_range:
                    start = int(match.group(1))
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header('Content-Range',
                                         f'bytes */{len(data)}')
                        self.send_header('Content-Length', '0')
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header(
                        'Content-Range',
                        f'bytes {start}-{len(data) - 1}/{len(data)}')
                else:
                    self.send_response(200)
                body = data[start:]
                if server.content_length:
                    self.send_header('Content-Length', str(len(body)))
                self.send_header('Connection', 'close')
                self.end_headers()
                if isinstance(action, int):
                    body = body[:action]
                self.wfile.write(body)
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f'http://127.0.0.1:{self.httpd.server_address[1]}{path}'

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
