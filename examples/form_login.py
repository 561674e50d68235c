"""A login form: ``await request.post()`` reads the submitted fields.

Try:   open http://localhost:8080/login in a browser (user: admin, password: secret)
       curl -i -d 'login=admin&password=secret' http://localhost:8080/login  -> 302 to /
       curl -i -d 'login=admin&password=wrong' http://localhost:8080/login   -> 403
"""

from __future__ import annotations

import hmac

from forkloop import web

FORM = """<!doctype html>
<form method="post" action="/login">
  <input name="login" placeholder="login">
  <input name="password" type="password" placeholder="password">
  <button>Log in</button>
</form>
"""

USERS = {"admin": "secret"}


async def login_form(request: web.Request) -> web.Response:
    return web.Response(text=FORM, content_type="text/html")


async def do_login(request: web.Request) -> web.Response:
    data = await request.post()
    login = str(data.get("login", ""))
    password = str(data.get("password", ""))
    expected = USERS.get(login)
    if expected is None or not hmac.compare_digest(expected, password):
        raise web.HTTPForbidden(text="wrong login or password")
    response = web.HTTPFound(location=request.app.router["index"].url_for())
    response.set_cookie("user", login, httponly=True)
    raise response


async def index(request: web.Request) -> web.Response:
    user = request.cookies.get("user")
    return web.Response(text=f"Hello, {user}" if user else "Hello, stranger")


def init_func(argv: list[str] | None = None) -> web.Application:
    app = web.Application()
    app.router.add_get("/", index, name="index")
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", do_login)
    return app


if __name__ == "__main__":
    web.run_app(init_func())
