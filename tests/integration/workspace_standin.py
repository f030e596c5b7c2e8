"""A stand-in for the few Databricks workspace REST endpoints the Databricks CLI calls.

There is no workspace to test against here, so this is the one fake in the bundle tests: the CLI
itself is real. It serves, from memory, what ``databricks bundle validate`` and
``databricks bundle deploy`` (direct engine) ask for: host metadata, the current user, workspace
files and directories, jobs and job permissions. It records every request; a request it has no
route for is answered 501 and kept in ``unknown``, so a test can fail on it and print it.

Usage::

    with WorkspaceStandIn() as workspace:
        env["DATABRICKS_HOST"] = workspace.url
        ...
        assert workspace.unknown == []
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

WORKSPACE_ID = "1234567890123456"
_PERMISSIONS = r"/api/2\.0/permissions/(?P<kind>directories|jobs)/(?P<object_id>\d+)"


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.body[:300]!r}"


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=dict)


def _not_found(what: str) -> Reply:
    return Reply(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"{what} not found"})


class WorkspaceStandIn:
    """An in-memory workspace on ``http://127.0.0.1:<random port>``, one user, served by a thread.

    ``user_name`` is the current user; ``groups`` the groups ``/Me`` says it belongs to;
    ``other_users`` other identities (e.g. a service principal) whose home folders exist, each
    managed by its owner as a home folder is.
    """

    def __init__(
        self,
        user_name: str = "tester@example.com",
        groups: tuple[str, ...] = ("users",),
        other_users: tuple[str, ...] = (),
    ) -> None:
        self.user_name = user_name
        self.groups = groups
        self.requests: list[Recorded] = []
        self.unknown: list[Recorded] = []
        self.files: dict[str, bytes] = {}
        self.home = f"/Workspace/Users/{user_name}"
        self.homes = {f"/Workspace/Users/{u}": u for u in (user_name, *other_users)}
        self.directories: set[str] = {"/Workspace", "/Workspace/Users", *self.homes}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.permissions: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self._ids = itertools.count(1001)
        self._object_ids: dict[str, int] = {}
        self._lock = threading.Lock()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = [
            ("GET", re.compile(r"/\.well-known/databricks-config"), self._host_metadata),
            ("GET", re.compile(r"/api/2\.0/preview/scim/v2/Me"), self._me),
            ("GET", re.compile(r"/api/2\.0/workspace/get-status"), self._get_status),
            ("POST", re.compile(r"/api/2\.0/workspace/mkdirs"), self._mkdirs),
            ("POST", re.compile(r"/api/2\.0/workspace/delete"), self._delete),
            ("POST", re.compile(r"/api/2\.0/workspace/import"), self._import),
            ("POST", re.compile(r"/api/2\.0/workspace-files/import-file(?P<path>/.*)"), self._put),
            ("GET", re.compile(r"/api/2\.0/workspace/export"), self._export),
            ("GET", re.compile(r"/api/2\.0/workspace-files(?P<path>/.*)"), self._get_file),
            ("POST", re.compile(r"/api/2\.2/jobs/create"), self._create_job),
            ("POST", re.compile(r"/api/2\.2/jobs/reset"), self._reset_job),
            ("GET", re.compile(r"/api/2\.2/jobs/get"), self._get_job),
            ("GET", re.compile(_PERMISSIONS), self._get_permissions),
            ("PUT", re.compile(_PERMISSIONS), self._set_permissions),
            ("POST", re.compile(r"/telemetry-ext"), self._telemetry),
        ]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> WorkspaceStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def requests_to(self, method: str, path_prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # -- dispatch -------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                recorded = Recorded(
                    method=self.command,
                    path=unquote(split.path),
                    query=parse_qs(split.query),
                    body=self.rfile.read(length) if length else b"",
                )
                reply = standin._dispatch(recorded)
                raw = isinstance(reply.body, bytes)
                payload = reply.body if raw else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header(
                    "Content-Type", "application/octet-stream" if raw else "application/json"
                )
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler

    def _dispatch(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            for method, pattern, handler in self._routes:
                match = pattern.fullmatch(request.path)
                if match and method == request.method:
                    return handler(request, **match.groupdict())
            self.unknown.append(request)
            return Reply(
                HTTPStatus.NOT_IMPLEMENTED,
                {"error_code": "NOT_IMPLEMENTED", "message": f"stand-in has no route: {request}"},
            )

    # -- identity -------------------------------------------------------------------------------

    def _host_metadata(self, _request: Recorded) -> Reply:
        return Reply(body={"workspace_id": WORKSPACE_ID, "oidc_endpoint": f"{self.url}/oidc"})

    def _me(self, _request: Recorded) -> Reply:
        return Reply(
            body={
                "id": "4242424242424242",
                "userName": self.user_name,
                "active": True,
                "groups": [{"display": g, "value": str(i)} for i, g in enumerate(self.groups)],
            }
        )

    def _telemetry(self, request: Recorded) -> Reply:
        return Reply(body={"errors": [], "numProtoSuccess": len(request.json()["protoLogs"])})

    # -- workspace files ------------------------------------------------------------------------

    @staticmethod
    def _principal(user_name: str) -> dict[str, str]:
        """How an ACL names an identity: a service principal's userName is its UUID."""
        if re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", user_name):
            return {"service_principal_name": user_name}
        return {"user_name": user_name}

    def _get_status(self, request: Recorded) -> Reply:
        path = request.query.get("path", [""])[0]
        if path in self.directories:
            return Reply(
                body={"path": path, "object_type": "DIRECTORY", "object_id": self._id(path)}
            )
        if path in self.files:
            return Reply(body={"path": path, "object_type": "FILE", "object_id": self._id(path)})
        return _not_found(f"Path ({path})")

    def _id(self, path: str) -> int:
        """A stable object id per workspace path."""
        return self._object_ids.setdefault(path, next(self._ids))

    def _mkdirs(self, request: Recorded) -> Reply:
        path = request.json()["path"]
        parts = path.rstrip("/").split("/")
        for end in range(2, len(parts) + 1):
            self.directories.add("/".join(parts[:end]))
        return Reply()

    def _delete(self, request: Recorded) -> Reply:
        path = request.json()["path"]
        self.files = {p: c for p, c in self.files.items() if not p.startswith(path)}
        self.directories = {d for d in self.directories if not d.startswith(path)}
        return Reply()

    def _store(self, path: str, content: bytes) -> None:
        path = "/" + path.lstrip("/")
        self.files[path] = content
        self._mkdirs(
            Recorded("POST", "", {}, json.dumps({"path": path.rsplit("/", 1)[0]}).encode())
        )

    def _put(self, request: Recorded, path: str) -> Reply:
        self._store(path, request.body)
        return Reply()

    def _import(self, request: Recorded) -> Reply:
        body = request.json()
        self._store(body["path"], base64.b64decode(body.get("content", "")))
        return Reply()

    def _get_file(self, _request: Recorded, path: str) -> Reply:
        if path in self.files:
            return Reply(body=self.files[path])
        return _not_found(f"File ({path})")

    def _export(self, request: Recorded) -> Reply:
        return self._get_file(request, request.query.get("path", [""])[0])

    # -- jobs -----------------------------------------------------------------------------------

    def _create_job(self, request: Recorded) -> Reply:
        job_id = next(self._ids)
        self.jobs[job_id] = request.json()
        return Reply(body={"job_id": job_id})

    def _reset_job(self, request: Recorded) -> Reply:
        body = request.json()
        self.jobs[int(body["job_id"])] = body["new_settings"]
        return Reply()

    def _get_job(self, request: Recorded) -> Reply:
        job_id = int(request.query.get("job_id", ["0"])[0])
        if job_id not in self.jobs:
            return _not_found(f"Job {job_id}")
        return Reply(
            body={
                "job_id": job_id,
                "creator_user_name": self.user_name,
                "settings": self.jobs[job_id],
            }
        )

    # -- permissions ----------------------------------------------------------------------------

    def _owner_acl(self, object_id: int) -> list[dict[str, Any]]:
        """A folder's ACL before anyone sets one: the owner of the home folder it is in manages
        it (the current user, for a folder in no home)."""
        path = next((p for p, i in self._object_ids.items() if i == object_id), "")
        owner_name = next(
            (u for home, u in self.homes.items() if f"{path}/".startswith(f"{home}/")),
            self.user_name,
        )
        owner = self._principal(owner_name) | {
            "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": False}]
        }
        admins = {
            "group_name": "admins",
            "all_permissions": [{"permission_level": "CAN_MANAGE", "inherited": True}],
        }
        return [owner, admins]

    def _get_permissions(self, _request: Recorded, kind: str, object_id: str) -> Reply:
        acl = self.permissions.get((kind, int(object_id)))
        if acl is None:
            acl = self._owner_acl(int(object_id)) if kind == "directories" else []
        return Reply(body={"object_id": f"/{kind}/{object_id}", "access_control_list": acl})

    def _set_permissions(self, request: Recorded, kind: str, object_id: str) -> Reply:
        """Keep the ACL as sent; a GET answers it in the response shape (all_permissions)."""
        self.permissions[(kind, int(object_id))] = [
            {key: value for key, value in entry.items() if key != "permission_level"}
            | {"all_permissions": [{"permission_level": entry["permission_level"]}]}
            for entry in request.json()["access_control_list"]
        ]
        return self._get_permissions(request, kind, object_id)
