"""The skills' REST API under /realm/api: skills, their primitives and per-primitive
summary, skill state, the passives and the forgetting watch's history and probes."""

from __future__ import annotations

import tornado.web

from .handlers import RealmHandler, mount


class SkillHandler(RealmHandler):
    async def skill_call(self, fn, skill: str):
        """Unknown skills are 404 (not 400): the URL names a resource that is not there."""
        import realm_skills as skills
        if skill not in skills.skill_ids():
            raise tornado.web.HTTPError(404, f"unknown skill {skill!r}; known: {skills.skill_ids()}")
        return await self.call(fn, skill)


class SkillsHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.call(self.realm.skills.list))


def _skill_route(method: str) -> type[SkillHandler]:
    """GET <route with a skill id> -> realm.skills.<method>(skill)."""
    class Handler(SkillHandler):
        @tornado.web.authenticated
        async def get(self, skill: str) -> None:
            self.reply(await self.skill_call(getattr(self.realm.skills, method), skill))
    Handler.__name__ = Handler.__qualname__ = f"Skill_{method}_Handler"
    return Handler


class PassivesHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.call(self.realm.skills.passives))


class PassiveHistoryHandler(RealmHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        passive = self.get_argument("passive", None) or None
        self.reply(await self.call(self.realm.skills.passive_history, passive))


class PassiveProbeHandler(RealmHandler):
    @tornado.web.authenticated
    async def post(self) -> None:
        body = self.json_body()
        step = self.field(body, "step", int, required=False)
        try:
            self.reply(await self.call(self.realm.skills.probe_passives, step))
        except FileNotFoundError as e:  # no such checkpoint on disk
            raise tornado.web.HTTPError(404, str(e)) from e


_ID = r"([^/]+)"  # any segment: an unknown skill is a 404 naming the known ones
ROUTES = [
    ("skills", SkillsHandler),
    (f"skills/{_ID}/primitives", _skill_route("primitives")),
    (f"skills/{_ID}/primitives/summary", _skill_route("primitive_summary")),
    (f"skills/{_ID}/primitives/history", _skill_route("primitive_history")),
    (f"skills/{_ID}/state", _skill_route("eval_report")),
    ("passives", PassivesHandler),
    ("passives/history", PassiveHistoryHandler),
    ("passives/probe", PassiveProbeHandler),
]


def handlers(base_url: str) -> list[tuple[str, type]]:
    return mount(base_url, ROUTES)
