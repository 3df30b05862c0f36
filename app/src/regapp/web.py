"""The web app: HTML pages for clerks, supervisors and auditors, and a JSON API with the same rules.

Every decision about what is stored is the register's (see migrations/); this module checks input,
asks, and explains the answer.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from flask import (
    Flask,
    Response,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf  # type: ignore[import-untyped]
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from regapp import auth, metrics, release_id, validate
from regapp.config import Config
from regapp.config import load as load_config
from regapp.db import Register, Unavailable

F = TypeVar("F", bound=Callable[..., Any])

REFUSALS = {
    "national_id_registered": (409, "this national ID is already registered"),
    "national_id_held": (409, "this national ID already waits for a supervisor's decision"),
    "unknown_commune": (422, "does not exist in the gazetteer"),
    "village_not_in_commune": (422, "is not a village of the chosen commune"),
    "station_not_in_commune": (422, "is not a polling station of the chosen commune"),
    "not_found": (404, "does not exist"),
    "already_decided": (409, "was already decided"),
    "own_submission": (403, "was submitted by you; another supervisor must decide it"),
    "own_registration": (
        403,
        "was registered or approved by you; another supervisor must correct it",
    ),
    "unknown_decision": (422, "must be registered or rejected"),
    "new_matches": (
        409,
        "has new matches registered since it was held; they are now listed: decide again",
    ),
}


class _JSON(DefaultJSONProvider):
    """Dates as ISO 8601 everywhere (Flask's default writes dates as HTTP dates)."""

    @staticmethod
    def default(o: Any) -> Any:
        if isinstance(o, dt.date | dt.datetime):
            return o.isoformat()
        return DefaultJSONProvider.default(o)


def create_app(config: Config | None = None) -> Flask:
    config = config or load_config()
    app = Flask(__name__)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    app.config.update(
        SECRET_KEY=config.secret_key_file.read_bytes().strip(),
        SESSION_COOKIE_NAME="__Host-regapp",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=config.session_hours),
        MAX_CONTENT_LENGTH=64 * 1024,
        WTF_CSRF_TIME_LIMIT=config.session_hours * 3600,
        WTF_CSRF_SSL_STRICT=False,  # nginx terminates TLS; SameSite=Strict guards the origin
    )
    provider = _JSON(app)
    provider.ensure_ascii = False
    provider.sort_keys = False
    app.json = provider
    csrf = CSRFProtect(app)
    db = Register(config, "app")
    app.extensions["regapp.db"] = db
    app.extensions["regapp.config"] = config

    def api() -> bool:
        return request.path.startswith("/api/")

    def client() -> str | None:
        return request.remote_addr

    def fail(status: int, errors: dict[str, str], page: str | None = None, **context: Any) -> Any:
        if api():
            return jsonify({"errors": errors}), status
        if page is None:
            return render_template("error.html", errors=errors), status
        for field, message in errors.items():
            flash(f"{field}: {message}", "error")
        return render_template(page, errors=errors, **context), status

    @app.before_request
    def start() -> Any:
        g.started = time.perf_counter()
        g.user = None
        if "user" in session:
            # A register that does not answer is a 503 (the error handler), not a logout.
            g.user = auth.current(db, session["user"], session.get("since", ""))
            if g.user is None:
                session.clear()
        return None

    @app.after_request
    def finish(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        metrics.LATENCY.labels(endpoint).observe(time.perf_counter() - g.get("started", 0.0))
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        metrics.REFUSALS.labels("csrf_token", "csrf").inc()
        return fail(
            400,
            {
                "csrf_token": f"{str(exc.description).rstrip('.')}; reload the page (or GET "
                "/api/session for a token) and send it again"
            },
        )

    @app.errorhandler(Unavailable)
    def unavailable(exc: Unavailable) -> Any:
        app.logger.error("%s", exc)
        return fail(
            503,
            {
                "register": "the register does not answer; nothing was stored. "
                "Try again in a minute; tell the on-call sysadmin if it lasts"
            },
        )

    @app.errorhandler(psycopg.errors.DataError)
    def bad_data(exc: psycopg.errors.DataError) -> Any:
        return fail(
            422,
            {
                "request": "holds a value the register cannot store (e.g. a NUL "
                "character or a number out of range); nothing was stored"
            },
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if api():
            return jsonify({"errors": {"request": exc.description}}), exc.code
        return exc

    def role(*allowed: str) -> Callable[[F], F]:
        def wrap(view: F) -> F:
            @functools.wraps(view)
            def inner(*args: Any, **kwargs: Any) -> Any:
                if g.user is None:
                    if api():
                        return jsonify(
                            {"errors": {"session": "log in first (POST /api/login)"}}
                        ), 401
                    return redirect(url_for("login", next=request.path))
                if g.user.role not in allowed:
                    if api():
                        return jsonify(
                            {"errors": {"role": f"needs role {' or '.join(allowed)}"}}
                        ), 403
                    abort(403, f"This page needs the role {' or '.join(allowed)}.")
                return view(*args, **kwargs)

            return inner  # type: ignore[return-value]

        return wrap

    # Health and metrics --------------------------------------------------------------------

    @app.get("/healthz")
    def healthz() -> Any:
        try:
            with db.transaction() as cur:
                cur.execute("SELECT count(*) AS n FROM register.schema_migration")
        except (Unavailable, psycopg.Error) as exc:
            # The details go to the journal, not to whoever asks.
            app.logger.error("health check: %s", str(exc).splitlines()[0] if str(exc) else exc)
            return jsonify(
                {"status": "failing", "release": release_id(), "database": "unavailable"}
            ), 503
        return jsonify({"status": "ok", "release": release_id(), "database": "ok"})

    @app.get("/metrics")
    def metrics_page() -> Response:
        return Response(metrics.exposition(db), mimetype="text/plain; version=0.0.4")

    # Sessions --------------------------------------------------------------------------------

    def start_session(user: auth.User) -> None:
        session.clear()
        session.permanent = True
        session["user"] = user.name
        session["since"] = user.password_changed_at.isoformat()

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if request.method == "GET":
            return render_template("login.html")
        try:
            user = auth.login(
                db,
                request.form.get("name", "").strip().lower(),
                request.form.get("password", ""),
                client(),
                failures=config.lockout_failures,
                lock_minutes=config.lockout_minutes,
            )
        except auth.LoginRefused as exc:
            metrics.LOGINS.labels("refused").inc()
            return fail(401, {"login": str(exc)}, "login.html")
        metrics.LOGINS.labels("ok").inc()
        start_session(user)
        return redirect(url_for("home"))

    @app.post("/logout")
    def logout() -> Any:
        session.clear()
        return redirect(url_for("login"))

    # An API client has no token before it logs in; the answer carries one for what follows.
    @csrf.exempt  # type: ignore[untyped-decorator]
    @app.post("/api/login")
    def api_login() -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return fail(400, {"body": 'send JSON: {"name": ..., "password": ...}'})
        try:
            user = auth.login(
                db,
                str(body.get("name", "")).strip().lower(),
                str(body.get("password", "")),
                client(),
                failures=config.lockout_failures,
                lock_minutes=config.lockout_minutes,
            )
        except auth.LoginRefused as exc:
            metrics.LOGINS.labels("refused").inc()
            return fail(401, {"login": str(exc)})
        metrics.LOGINS.labels("ok").inc()
        start_session(user)
        return jsonify({"user": user.name, "role": user.role, "csrf_token": generate_csrf()})

    @app.get("/api/session")
    @role("clerk", "supervisor", "auditor")
    def api_session() -> Any:
        return jsonify({"user": g.user.name, "role": g.user.role, "csrf_token": generate_csrf()})

    @app.post("/api/logout")
    def api_logout() -> Any:
        session.clear()
        return jsonify({"status": "logged out"})

    @app.get("/")
    def home() -> Any:
        if g.user is None:
            return redirect(url_for("login"))
        return redirect(
            url_for(
                {"clerk": "register_form", "supervisor": "held", "auditor": "audit"}[g.user.role]
            )
        )

    # Reference data ----------------------------------------------------------------------------

    @app.get("/api/units")
    @role("clerk", "supervisor", "auditor")
    def units() -> Any:
        parent = request.args.get("parent") or None
        with db.transaction() as cur:
            cur.execute(
                "SELECT code, level, name_km, name_latin FROM register.admin_unit "
                "WHERE parent_code IS NOT DISTINCT FROM %s ORDER BY code",
                [parent],
            )
            rows = cur.fetchall()
            stations: list[dict[str, Any]] = []
            if parent and len(parent) == 6:
                cur.execute(
                    "SELECT code, name_km, name_latin FROM register.polling_station "
                    "WHERE commune_code = %s ORDER BY code",
                    [parent],
                )
                stations = cur.fetchall()
        return jsonify({"units": rows, "stations": stations})

    # Registration ------------------------------------------------------------------------------

    def checked_field(exc: psycopg.errors.CheckViolation) -> str:
        """The field a register check names (voter_name_km_check: name_km)."""
        name = exc.diag.constraint_name or ""
        for field in validate.FIELDS:
            if f"_{field}_" in name:
                return field
        return "registration"

    def submit(data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        try:
            reg = validate.registration(
                data, qualifying=config.qualifying_date, minimum_age=config.minimum_age
            )
        except validate.Invalid as exc:
            for field in exc.errors:
                metrics.REFUSALS.labels(
                    field if field in validate.FIELDS else "other", "invalid"
                ).inc()
            metrics.REGISTRATIONS.labels("refused").inc()
            return 422, {"errors": exc.errors}
        try:
            result = db.call("submit_registration", reg.as_json(), g.user.name, client())
        except psycopg.errors.UniqueViolation:
            result = {
                "status": "refused",
                "field": "national_id",
                "reason": "national_id_registered",
            }
        except psycopg.errors.CheckViolation as exc:
            field = checked_field(exc)
            metrics.REFUSALS.labels(field, "check").inc()
            metrics.REGISTRATIONS.labels("refused").inc()
            return 422, {"errors": {field: "is not in the form the register stores"}}
        status = result["status"]
        metrics.REGISTRATIONS.labels(status).inc()
        if status == "registered":
            return 201, result
        if status == "held":
            return 202, result
        reason = result["reason"]
        metrics.REFUSALS.labels(result["field"], reason).inc()
        code, message = REFUSALS[reason]
        if "voter_id" in result:
            message += f" (voter #{result['voter_id']})"
        return code, {"errors": {result["field"]: message}, "reason": reason}

    @app.get("/register")
    @role("clerk")
    def register_form() -> Any:
        return render_template("register.html", form={}, errors={})

    @app.post("/register")
    @role("clerk")
    def register_post() -> Any:
        form = {k: v for k, v in request.form.items() if k != "csrf_token"}
        code, body = submit(form)
        if code == 201:
            flash(f"Registered: voter #{body['voter_id']}", "ok")
            return redirect(url_for("register_form"))
        if code == 202:
            return render_template("held_notice.html", result=body), 202
        return render_template("register.html", form=form, errors=body["errors"]), code

    @app.post("/api/registrations")
    @role("clerk")
    def api_register() -> Any:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            metrics.REFUSALS.labels("body", "not_json").inc()
            return fail(
                400,
                {"body": "send one registration as a JSON object (Content-Type: application/json)"},
            )
        code, body = submit(data)
        return jsonify(body), code

    # Search and view -------------------------------------------------------------------------

    def search_query(args: Any) -> dict[str, str] | tuple[int, dict[str, str]]:
        query: dict[str, str] = {}
        errors: dict[str, str] = {}
        for key in ("national_id", "name", "date_of_birth", "commune_code"):
            value = validate.clean_text(str(args.get(key, "")))
            if value:
                query[key] = value
        if "date_of_birth" in query:
            try:
                query["date_of_birth"] = validate.date_of_birth(
                    query["date_of_birth"],
                    qualifying=dt.date.today(),
                    minimum_age=0,
                    today=dt.date.today(),
                ).isoformat()
            except ValueError as exc:
                errors["date_of_birth"] = str(exc)
        if not query.get("national_id") and len(query.get("name", "")) < 2:
            errors["name"] = "give a national ID, or at least two letters of a name"
        return (422, errors) if errors else query

    @app.get("/search")
    @role("clerk", "supervisor")
    def search() -> Any:
        if not request.args:
            return render_template("search.html", results=None, query={})
        query = search_query(request.args)
        if isinstance(query, tuple):
            return fail(query[0], query[1], "search.html", results=None, query=request.args)
        return render_template(
            "search.html",
            query=query,
            results=db.call("search_voters", query, g.user.name, client()),
        )

    @app.get("/api/voters")
    @role("clerk", "supervisor")
    def api_search() -> Any:
        query = search_query(request.args)
        if isinstance(query, tuple):
            return fail(*query)
        return jsonify({"voters": db.call("search_voters", query, g.user.name, client())})

    def view(voter_id: int) -> dict[str, Any]:
        voter = db.call("view_voter", voter_id, g.user.name, client())
        if voter is None:
            abort(404, f"no voter #{voter_id}")
        return voter  # type: ignore[no-any-return]

    @app.get("/voters/<int(max=9223372036854775807):voter_id>")
    @role("clerk", "supervisor")
    def voter_page(voter_id: int) -> Any:
        return render_template("voter.html", voter=view(voter_id))

    @app.get("/api/voters/<int(max=9223372036854775807):voter_id>")
    @role("clerk", "supervisor")
    def api_voter(voter_id: int) -> Any:
        return jsonify(view(voter_id))

    # Corrections and held registrations (supervisors) ------------------------------------------

    def correct(voter_id: int, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        note = validate.clean_text(str(data.pop("note", "")))
        changes = {k: v for k, v in data.items() if v not in (None, "") and k != "csrf_token"}
        if not note:
            return 422, {"errors": {"note": "say why the record is corrected"}}
        if not changes:
            return 422, {"errors": {"record": "change at least one field"}}
        with db.transaction() as cur:
            cur.execute(
                "SELECT register.voter_json(v) AS v FROM register.voter v WHERE id = %s", [voter_id]
            )
            row = cur.fetchone()
        if row is None:
            return 404, {"errors": {"voter_id": f"no voter #{voter_id}"}}
        merged = {
            k: (str(v) if v is not None else "")
            for k, v in row["v"].items()
            if k in validate.FIELDS
        }
        current = dict(merged)
        merged.update({k: str(v) for k, v in changes.items()})
        try:
            reg = validate.registration(
                merged, qualifying=config.qualifying_date, minimum_age=config.minimum_age
            )
        except validate.Invalid as exc:
            return 422, {"errors": exc.errors}
        # Only what this supervisor changed: a correction made meanwhile by another stays.
        changed = {
            k: v for k, v in reg.as_json().items() if k in changes and v != (current[k] or None)
        }
        if not changed:
            return 422, {"errors": {"record": "nothing differs from the stored record"}}
        try:
            result = db.call("correct_voter", voter_id, changed, note, g.user.name, client())
        except psycopg.errors.UniqueViolation:
            return 409, {"errors": {"national_id": REFUSALS["national_id_registered"][1]}}
        except psycopg.errors.CheckViolation as exc:
            return 422, {"errors": {checked_field(exc): "is not in the form the register stores"}}
        if result["status"] != "corrected":
            code, message = REFUSALS[result["reason"]]
            return code, {"errors": {result["field"]: message}}
        return 200, result

    @app.route("/voters/<int(max=9223372036854775807):voter_id>/correct", methods=["GET", "POST"])
    @role("supervisor")
    def correct_page(voter_id: int) -> Any:
        if request.method == "GET":
            return render_template("correct.html", voter=view(voter_id), errors={})
        code, body = correct(voter_id, dict(request.form))
        if code == 200:
            flash(f"Voter #{voter_id} corrected", "ok")
            return redirect(url_for("voter_page", voter_id=voter_id))
        return render_template("correct.html", voter=view(voter_id), errors=body["errors"]), code

    @app.patch("/api/voters/<int(max=9223372036854775807):voter_id>")
    @role("supervisor")
    def api_correct(voter_id: int) -> Any:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return fail(400, {"body": "send the changed fields and a note as a JSON object"})
        code, body = correct(voter_id, data)
        return jsonify(body), code

    def held_rows() -> list[dict[str, Any]]:
        with db.transaction() as cur:
            cur.execute(
                "SELECT id, national_id, name_km, name_latin, sex, date_of_birth, "
                "commune_code, polling_station, matches, submitted_at, submitted_by "
                "FROM register.held_registration WHERE decision IS NULL "
                "ORDER BY submitted_at LIMIT 200"
            )
            return cur.fetchall()

    def decide(held_id: int, decision: str, note: str) -> tuple[int, dict[str, Any]]:
        note = validate.clean_text(note)
        if not note:
            return 422, {"errors": {"note": "say why (what you checked)"}}
        result = db.call("decide_held", held_id, decision, note, g.user.name, client())
        if result["status"] == "refused":
            code, message = REFUSALS[result["reason"]]
            return code, {"errors": {result["field"]: message}}
        return 200, result

    @app.route("/held", methods=["GET"])
    @role("supervisor")
    def held() -> Any:
        return render_template("held.html", rows=held_rows())

    @app.post("/held/<int(max=9223372036854775807):held_id>")
    @role("supervisor")
    def held_decide(held_id: int) -> Any:
        code, body = decide(held_id, request.form.get("decision", ""), request.form.get("note", ""))
        if code == 200:
            flash(f"Held registration #{held_id}: {body['status']}", "ok")
        else:
            for field, message in body["errors"].items():
                flash(f"{field}: {message}", "error")
        return redirect(url_for("held"))

    @app.get("/api/held")
    @role("supervisor")
    def api_held() -> Any:
        return jsonify({"held": held_rows()})

    @app.post("/api/held/<int(max=9223372036854775807):held_id>")
    @role("supervisor")
    def api_decide(held_id: int) -> Any:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return fail(400, {"body": 'send {"decision": "registered" or "rejected", "note": ...}'})
        code, body = decide(held_id, str(data.get("decision", "")), str(data.get("note", "")))
        return jsonify(body), code

    # Audit trail (auditors) --------------------------------------------------------------------

    def after_arg() -> int:
        after = request.args.get("after", "0")
        return int(after) if after.isascii() and after.isdecimal() and len(after) < 19 else 0

    def audit_rows(
        after: int, limit: int, verify: bool
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        with db.transaction() as cur:
            cur.execute(
                "SELECT seq, at, actor, host(address) AS address, action, voter_id, "
                "held_id, old_values, new_values, encode(hash, 'hex') AS hash "
                "FROM register.audit_entry WHERE seq > %s ORDER BY seq LIMIT %s",
                [after, limit],
            )
            rows = cur.fetchall()
            check = None
            if verify:  # reads the whole trail: on demand, not with every page
                cur.execute("SELECT * FROM register.audit_verify()")
                check = cur.fetchone() or {}
        return rows, check

    @app.get("/audit")
    @role("auditor")
    def audit() -> Any:
        rows, check = audit_rows(after_arg(), 200, "verify" in request.args)
        return render_template("audit.html", rows=rows, check=check)

    @app.get("/api/audit")
    @role("auditor")
    def api_audit() -> Any:
        rows, check = audit_rows(after_arg(), 1000, "verify" in request.args)
        return jsonify({"entries": rows, "chain": check})

    return app
