"""A visitor's conversation through the HTTP API, against the real redis-server."""

from __future__ import annotations

import msgspec
import pytest
import respx
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis

from common import keys
from newchat import LanguageDetector, Services
from newchat.leads import Lead
from tests.conftest import LEADPROSPER_URL
from tests.integration.conftest import say


async def at_the_read_back(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    """A conversation brought to its read-back: Ann Lee's four details, step `confirm`."""
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    reply = (await say(client, "Ann Lee, 555-201-7788, ann@example.com, 90210")).json()
    assert reply["step"] == "confirm"


async def test_full_conversation_reaches_done_and_queues_one_lead_with_the_details(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    first = (await say(client, "I was rear ended on the freeway and my neck hurts")).json()
    assert first["category"] == "personal_injury"
    assert first["step"] == "name"
    assert first["done"] is False
    session_id = first["sessionId"]

    steps = []
    for message in ["Ann Lee", "555-201-7788", "ann@example.com", "90210"]:
        reply = (await say(client, message)).json()
        assert reply["sessionId"] == session_id
        steps.append(reply["step"])
    assert steps == ["phone", "email", "zip", "confirm"]
    assert reply["done"] is False
    for detail in ("Ann Lee", "(555) 201-7788", "ann@example.com", "90210", "personal injury"):
        assert detail in reply["reply"]  # the read-back
    assert await redis.llen(keys.LEAD_QUEUE) == 0  # nothing queued before the yes
    reply = (await say(client, "yes")).json()
    assert (reply["step"], reply["done"]) == ("done", True)

    queued = await redis.lrange(keys.LEAD_QUEUE, 0, -1)
    assert len(queued) == 1
    lead = msgspec.json.decode(queued[0], type=Lead)
    assert (lead.first_name, lead.last_name, lead.phone, lead.email, lead.zip) == (
        "Ann",
        "Lee",
        "5552017788",
        "ann@example.com",
        "90210",
    )
    assert lead.category == "personal_injury"
    assert "rear ended" in lead.description
    assert lead.idempotency_key == session_id


async def test_details_given_together_are_all_taken(client: AsyncTestClient, redis: Redis) -> None:  # type: ignore[type-arg]
    await say(client, "my landlord won't give back my security deposit")
    reply = (await say(client, "I'm Ann Lee, 555-201-7788, ann@example.com, 90210")).json()
    assert (reply["step"], reply["done"], reply["category"]) == ("confirm", False, "real_estate")
    assert reply["collected"] == ["name", "phone", "email", "zip"]
    await say(client, "that's right")
    assert await redis.llen(keys.LEAD_QUEUE) == 1


async def test_a_vague_first_message_gets_one_request_for_more_detail(
    client: AsyncTestClient,
) -> None:  # type: ignore[type-arg]
    first = (await say(client, "hi, I need a lawyer")).json()
    assert (first["step"], first["category"]) == ("describe", None)
    second = (await say(client, "my husband wants a divorce")).json()
    assert (second["step"], second["category"]) == ("name", "family")


async def test_still_vague_after_asking_goes_on_as_general(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await say(client, "hello")
    reply = (await say(client, "I just have a question")).json()
    assert (reply["step"], reply["category"]) == ("name", "general")


async def test_invalid_details_are_asked_for_again_politely(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await say(client, "I got a DUI")
    await say(client, "Ann Lee")
    bad_phone = (await say(client, "123-456-7890")).json()
    assert bad_phone["step"] == "phone"
    assert bad_phone["reply"].startswith("Sorry")
    assert (await say(client, "312-555-0199")).json()["step"] == "email"
    bad_email = (await say(client, "ann@")).json()
    assert (bad_email["step"], bad_email["reply"][:5]) == ("email", "Sorry")
    assert (await say(client, "ann@example.com")).json()["step"] == "zip"
    bad_zip = (await say(client, "123")).json()
    assert (bad_zip["step"], bad_zip["reply"][:5]) == ("zip", "Sorry")


async def test_messages_after_done_never_queue_a_second_lead(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    await say(client, "I was fired for no reason")
    await say(client, "Ann Lee, 555-201-7788, ann@example.com, 90210")
    await say(client, "yes")
    for _ in range(3):
        reply = (await say(client, "90210")).json()
        assert reply["done"] is True
    assert await redis.llen(keys.LEAD_QUEUE) == 1


async def test_session_ttl_is_seven_days_and_renewed_on_activity(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    session_id = (await say(client, "I need help with my green card")).json()["sessionId"]
    key = keys.session(session_id)
    assert 604_790 <= await redis.ttl(key) <= 604_800
    await redis.expire(key, 100)
    await say(client, "Ann Lee")
    assert await redis.ttl(key) > 604_790


async def test_session_is_stored_as_msgpack_not_pickle(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    session_id = (await say(client, "I need a will")).json()["sessionId"]
    raw = await redis.get(keys.session(session_id))
    assert not raw.startswith(b"\x80")  # pickle protocol marker
    assert msgspec.msgpack.decode(raw)["category"] == "estate"


async def test_lead_reaches_a_mocked_leadprosper_with_the_right_fields(
    client: AsyncTestClient,
    outside: respx.MockRouter,  # type: ignore[type-arg]
) -> None:
    """A read-back, a correction in it, a second read-back and a yes: LeadProsper gets the
    corrected values."""
    route = outside.post(LEADPROSPER_URL).respond(200, json={"status": "ACCEPTED", "lead_id": 77})
    await say(client, "my doctor misdiagnosed my cancer")
    first = (await say(client, "I'm Ann Lee, 555-201-7788, ann@example.com, 90201")).json()
    assert (first["step"], "90201" in first["reply"]) == ("confirm", True)
    corrected = (await say(client, "sorry, the zip code is 90210")).json()
    assert corrected["step"] == "confirm"
    assert "90210" in corrected["reply"]
    assert "90201" not in corrected["reply"]
    assert (await say(client, "yes")).json()["done"] is True
    processed = await client.post(
        "/api/cron/process-leads", headers={"x-cron-secret": "test-cron-secret"}
    )
    assert processed.status_code == 200
    assert processed.json()["processed"]["accepted"] == 1
    assert route.call_count == 1
    sent = msgspec.json.decode(route.calls[0].request.content)
    assert sent | {"description": "", "external_lead_id": ""} == {
        "lp_campaign_id": "123",
        "lp_supplier_id": "456",
        "lp_key": "lp-key",
        "first_name": "Ann",
        "last_name": "Lee",
        "email": "ann@example.com",
        "phone": "5552017788",
        "zip_code": "90210",
        "practice_area": "medical_malpractice",
        "description": "",
        "external_lead_id": "",
        "language": "en",
    }
    status = (
        await client.get("/api/cron/process-leads", headers={"x-cron-secret": "test-cron-secret"})
    ).json()
    assert (status["queued"], status["processing"], status["failed"]) == (0, 0, 0)


async def test_the_acknowledgement_reads_as_english(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    employment = (await say(client, "I was fired after I reported harassment at work")).json()
    assert "That sounds like employment law, and we can help." in employment["reply"]
    client.cookies.clear()
    family = (await say(client, "I want a divorce and custody of my kids")).json()
    assert "That sounds like family law, and we can help." in family["reply"]


async def test_the_read_back_takes_corrections_until_a_yes(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    await at_the_read_back(client)
    fixed = (await say(client, "no, my number is 555-201-7799")).json()
    assert (fixed["step"], fixed["done"]) == ("confirm", False)
    assert "(555) 201-7799" in fixed["reply"]
    assert "(555) 201-7788" not in fixed["reply"]
    unclear = (await say(client, "hmm")).json()
    assert unclear["step"] == "confirm"
    assert unclear["reply"].startswith("Please reply yes")
    refused = (await say(client, "no")).json()
    assert refused["step"] == "confirm"
    surname = (await say(client, "sorry, my last name is spelled Leigh")).json()
    assert "Ann Leigh" in surname["reply"]
    assert await redis.llen(keys.LEAD_QUEUE) == 0
    assert (await say(client, "that's correct")).json()["done"] is True
    [raw] = await redis.lrange(keys.LEAD_QUEUE, 0, -1)
    lead = msgspec.json.decode(raw, type=Lead)
    assert (lead.first_name, lead.last_name, lead.phone) == ("Ann", "Leigh", "5552017799")


async def test_every_re_ask_says_what_was_wrong(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await say(client, "I was arrested for shoplifting")
    asks = []
    for message in ("why do you need it?", "Ann Lee", "555 3", "5552017788", "john..doe@example.com",
                    "ann@example.com", "123"):  # fmt: skip
        asks.append((await say(client, message)).json())
    assert [a["step"] for a in asks] == ["name", "phone", "phone", "email", "email", "zip", "zip"]
    assert asks[0]["reply"] == (  # a question gets an answer before the ask again
        "Our attorney needs it to contact you about your case; your details go only to our "
        "attorneys. May I have your full name (first and last)?"
    )
    assert "10 digits" in asks[2]["reply"]
    assert "two dots in a row" in asks[4]["reply"]
    assert "5 digits" in asks[6]["reply"]


async def test_a_visitor_answering_tell_me_more_with_a_name_is_not_asked_for_it_again(
    client: AsyncTestClient,
) -> None:  # type: ignore[type-arg]
    assert (await say(client, "I got a letter from a court")).json()["step"] == "describe"
    reply = (await say(client, "Nora Quinn")).json()
    assert (reply["step"], reply["collected"]) == ("phone", ["name"])


async def test_asked_to_tell_more_a_visitor_may_answer_with_a_name_in_any_case(
    client: AsyncTestClient,
) -> None:  # type: ignore[type-arg]
    assert (await say(client, "hi, I need a lawyer")).json()["step"] == "describe"
    reply = (await say(client, "jorge alberto mendoza")).json()
    assert (reply["step"], reply["collected"]) == ("phone", ["name"])


async def test_a_description_after_the_ask_is_never_taken_for_a_name(
    client: AsyncTestClient,
) -> None:  # type: ignore[type-arg]
    await say(client, "hi, I need a lawyer")
    reply = (await say(client, "car accident yesterday")).json()
    assert (reply["step"], reply["category"], reply["collected"]) == (
        "name", "personal_injury", [],
    )  # fmt: skip


async def test_a_first_message_in_capitals_is_a_description_not_a_name(
    client: AsyncTestClient,
) -> None:  # type: ignore[type-arg]
    reply = (await say(client, "I NEED TO FILE FOR DIVORCE, 2 KIDS AGES 7 AND 10")).json()
    assert (reply["step"], reply["collected"]) == ("name", [])


@pytest.mark.parametrize(
    ("answer", "done"),
    [("yess", True), ("Siii 👍", True), ("Yes!!", True), ("sí, todo bien", True),
     ("sounds right", True), ("yes but the phone is wrong", False), ("no", False)],
)  # fmt: skip
async def test_a_confirmation_is_read_as_people_type_it(
    client: AsyncTestClient,  # type: ignore[type-arg]
    answer: str,
    done: bool,
) -> None:
    await at_the_read_back(client)
    assert (await say(client, answer)).json()["done"] is done


@pytest.mark.parametrize(
    "answer",
    ["I don't think that's right", "correct except the zip", "yes wait", "ok hold on",
     "is that right?", "yes my husband's number would be better", "sí, menos el teléfono",
     "casi bien, falta un número", "todo bien excepto el correo", "the last name is wrong"],
)  # fmt: skip
async def test_a_yes_that_is_really_a_no_queues_nothing(
    client: AsyncTestClient,  # type: ignore[type-arg]
    redis: Redis,  # type: ignore[type-arg]
    answer: str,
) -> None:
    await at_the_read_back(client)
    reply = (await say(client, answer)).json()
    assert (reply["step"], reply["done"]) == ("confirm", False)
    not_yes = ("Please reply yes", "Por favor, responda sí")  # in the answer's language
    assert "Ann Lee" in reply["reply"] or reply["reply"].startswith(not_yes)
    assert await redis.llen(keys.LEAD_QUEUE) == 0


async def confirmed(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    """A conversation whose lead is queued: Ann Lee's details read back and confirmed."""
    await at_the_read_back(client)
    assert (await say(client, "yes")).json()["step"] == "done"


async def queued_leads(redis: Redis) -> list[Lead]:  # type: ignore[type-arg]
    return [
        msgspec.json.decode(raw, type=Lead) for raw in await redis.lrange(keys.LEAD_QUEUE, 0, -1)
    ]


async def test_a_correction_after_the_end_reaches_the_lead_while_it_waits(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    await confirmed(client)
    [before] = await queued_leads(redis)
    reply = (await say(client, "sorry, my number is actually 555-201-7799")).json()
    assert reply["done"] is True
    assert reply["reply"].startswith(
        "Thanks, I've updated your details: Ann Lee, phone (555) 201-7799"
    )
    [after] = await queued_leads(redis)
    assert (after.id, after.phone, after.created_at) == (before.id, "5552017799", before.created_at)
    assert after.email == before.email
    metrics = (await client.get("/metrics")).text
    assert 'chat_lead_corrections_total{outcome="applied"} 1.0' in metrics


async def test_a_correction_after_a_worker_claimed_the_lead_is_told_it_came_too_late(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
    engine: Services,
) -> None:
    await confirmed(client)
    [claimed] = await engine.queue.claim("worker-1", 1)
    reply = (await say(client, "sorry, my number is actually 555-201-7799")).json()
    assert reply["reply"].startswith("I'm sorry, your details have already gone to our attorneys")
    [raw] = await redis.hvals(keys.LEAD_PROCESSING)
    assert msgspec.json.decode(raw)["lead"]["phone"] == claimed.phone == "5552017788"
    metrics = (await client.get("/metrics")).text
    assert 'chat_lead_corrections_total{outcome="too_late"} 1.0' in metrics


async def test_the_same_details_after_the_end_change_nothing(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    await confirmed(client)
    [before] = await queued_leads(redis)
    reply = (await say(client, "my number is 555-201-7788")).json()
    assert reply["reply"].startswith("Thanks, Ann, we already have your details")
    assert await queued_leads(redis) == [before]


async def test_a_title_and_surname_then_a_first_name_make_the_whole_name(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    assert (await say(client, "Mr. Lee")).json()["reply"] == "Thanks. What's your first name?"
    reply = (await say(client, "John")).json()
    assert (reply["step"], reply["collected"]) == ("phone", ["name"])
    await say(client, "555-201-7788, john@example.com, 90210")
    await say(client, "yes")
    [lead] = await queued_leads(redis)
    assert (lead.first_name, lead.last_name) == ("John", "Lee")


async def test_a_first_name_alone_then_a_surname_make_the_whole_name(
    client: AsyncTestClient,
) -> None:  # type: ignore[type-arg]
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    assert (await say(client, "its maria")).json()[
        "reply"
    ] == "Thanks, Maria. What's your last name?"
    reply = (await say(client, "lopez")).json()
    assert (reply["step"], reply["reply"]) == (
        "phone",
        "Thanks, Maria. What's the best phone number to reach you?",
    )


@pytest.mark.parametrize("answer", ["Car Accident", "Dog Bite", "Drunk Driving", "Slip And Fall"])
async def test_what_happened_given_at_the_name_step_is_no_name(
    client: AsyncTestClient,  # type: ignore[type-arg]
    answer: str,
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    reply = (await say(client, answer)).json()
    assert (reply["step"], reply["collected"]) == ("name", [])
    assert "reads like what happened rather than a name" in reply["reply"]


async def test_a_name_that_reads_like_a_matter_counts_after_my_name_is(
    client: AsyncTestClient,
) -> None:  # type: ignore[type-arg]
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    assert (await say(client, "Joy Trust")).json()["collected"] == []
    named = (await say(client, "my name is Joy Trust")).json()
    assert (named["step"], named["collected"]) == ("phone", ["name"])


async def test_a_visitor_calling_for_someone_else_is_asked_for_their_own_name(
    client: AsyncTestClient,
) -> None:  # type: ignore[type-arg]
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    reply = (await say(client, "I'm calling for my mother, her name is Rosa Diaz")).json()
    assert reply["reply"] == (
        "Sorry, I need your own name, as the person our attorney will call. Could you enter it again?"
    )
    assert reply["collected"] == []


async def test_an_email_typo_is_asked_about_and_taken_when_sent_again(
    client: AsyncTestClient,
) -> None:  # type: ignore[type-arg]
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    await say(client, "Ann Lee, 555-201-7788")
    asked = (await say(client, "ann@gmial.com")).json()
    assert (asked["step"], asked["reply"]) == (
        "email",
        "Did you mean ann@gmail.com? If ann@gmial.com is right, just send it again.",
    )
    assert (await say(client, "ann@gmial.com")).json()["step"] == "zip"


SPANISH_CONVERSATION = [
    ("Hola, tuve un accidente de carro y me duele el cuello", "Lamento que esté pasando por esto"),
    ("Me llamo Carmen Ortiz", "Gracias, Carmen. ¿Cuál es el mejor número"),
    ("mi número es 555 3", "Disculpe, un número de teléfono de EE. UU. tiene 10 dígitos"),
    ("mi número es 305 555 0182", "¿Y su correo electrónico?"),
    ("mi correo es carmen@gmial.com", "¿Quiso decir carmen@gmail.com?"),
    ("carmen@gmail.com", "Por último: ¿cuál es su código postal?"),
    ("99999", "Disculpe, 99999 no es un código postal en uso"),
    ("código postal 33130", "Repaso sus datos: Carmen Ortiz, teléfono (305) 555-0182"),
    ("no, mi teléfono es 305 555 0183", "Gracias, ya lo actualicé. Repaso sus datos"),
    ("sí, correcto", "Gracias, Carmen. Un abogado que lleva casos de lesiones personales"),
]


async def test_a_spanish_conversation_is_spanish_from_the_first_reply_to_the_last(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    for message, reply_starts in SPANISH_CONVERSATION:
        reply = (await say(client, message)).json()["reply"]
        assert reply.startswith(reply_starts), (message, reply)
    [lead] = await queued_leads(redis)
    assert (lead.language, lead.phone, lead.email, lead.zip) == (
        "es",
        "3055550183",
        "carmen@gmail.com",
        "33130",
    )


async def test_a_conversation_follows_the_visitor_when_they_switch_language(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    assert (
        (await say(client, "I was rear-ended and my neck hurts"))
        .json()["reply"]
        .startswith("I'm sorry you're dealing with this")
    )
    switched = (await say(client, "perdón, prefiero hablar en español. Me llamo Ana Ruiz")).json()
    assert (
        switched["reply"]
        == "Gracias, Ana. ¿Cuál es el mejor número de teléfono para comunicarnos con usted?"
    )
    back = (await say(client, "sorry, english please: my number is 305 555 0182")).json()
    assert back["reply"] == "And your email address?"
    await say(client, "ana@example.com, 33130")
    await say(client, "yes")
    [lead] = await queued_leads(redis)
    assert lead.language == "en"


@pytest.mark.parametrize(
    "messages",
    [
        ["I was rear-ended and my neck hurts", "José García", "no", "305 555 0182"],
        ["I was rear-ended and my neck hurts", "Sra. Guadalupe Torres", "305-555-0182"],
    ],
)
async def test_an_english_conversation_stays_english_whatever_the_names_and_short_words(
    client: AsyncTestClient,  # type: ignore[type-arg]
    messages: list[str],
) -> None:
    replies = [(await say(client, message)).json()["reply"] for message in messages]
    detector = LanguageDetector()
    assert [detector.language_of(reply) for reply in replies] == ["en"] * len(messages)


async def test_a_short_word_both_languages_share_never_switches_a_spanish_conversation(
    client: AsyncTestClient,
) -> None:  # type: ignore[type-arg]
    await say(client, "Hola, tuve un accidente de carro y me duele el cuello")
    for word in ("no", "ok", "Carmen Ortiz"):
        reply = (await say(client, word)).json()["reply"]
        assert LanguageDetector().language_of(reply) == "es", (word, reply)


async def test_a_yes_to_the_suggested_address_takes_it(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    await say(client, "Ann Lee, 555-201-7788")
    assert (await say(client, "ann@gmial.com")).json()["reply"].startswith("Did you mean")
    reply = (await say(client, "yes")).json()
    assert (reply["step"], reply["collected"]) == ("zip", ["name", "phone", "email"])
    await say(client, "90210")
    assert "email ann@gmail.com" in (await say(client, "no, my zip is 90211")).json()["reply"]


async def test_a_first_name_given_twice_is_never_the_surname(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    assert (await say(client, "Bob")).json()["reply"] == "Thanks, Bob. What's your last name?"
    again = (await say(client, "Bob")).json()
    assert (again["step"], again["collected"]) == ("name", [])
    assert again["reply"] == "Thanks, Bob. What's your last name?"
    assert (await say(client, "Marley")).json()["collected"] == ["name"]


async def test_a_short_surname_is_taken_at_once(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    assert (await say(client, "Kim Le")).json()["collected"] == ["name"]


async def test_a_general_conversation_learns_its_practice_area_when_the_visitor_names_it(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    await say(client, "Hi")
    general = (await say(client, "I don't want to say")).json()
    assert (general["category"], general["step"]) == ("general", "name")
    learnt = (await say(client, "ok fine. workers comp, fell off a ladder")).json()
    assert (learnt["category"], learnt["step"], learnt["collected"]) == ("workers_comp", "name", [])
    await say(client, "Ann Lee, 555-201-7788, ann@example.com, 90210")
    await say(client, "yes")
    [lead] = await queued_leads(redis)
    assert (lead.category, "ladder" in lead.description) == ("workers_comp", True)


@pytest.mark.parametrize(
    "message",
    ["the other driver's number is 917-555-0199", "my claim number is 9175550199",
     "the other driver's email is bob@example.com"],
)  # fmt: skip
async def test_someone_elses_or_a_claims_number_after_the_end_changes_nothing(
    client: AsyncTestClient,  # type: ignore[type-arg]
    redis: Redis,  # type: ignore[type-arg]
    message: str,
) -> None:
    await confirmed(client)
    [before] = await queued_leads(redis)
    assert (await say(client, message)).json()["reply"].startswith("Thanks, Ann, we already have")
    assert await queued_leads(redis) == [before]


@pytest.mark.parametrize(
    "message",
    ["the other driver's number is 917-555-0199", "my claim number is 9175550199"],
)
async def test_someone_elses_or_a_claims_number_at_the_read_back_changes_nothing(
    client: AsyncTestClient,  # type: ignore[type-arg]
    message: str,
) -> None:
    await at_the_read_back(client)
    reply = (await say(client, message)).json()
    assert "(555) 201-7788" in reply["reply"] or reply["reply"].startswith("Please reply yes")


def in_spanish(reply: str) -> bool:
    return LanguageDetector().language_of(reply) == "es"


async def test_a_lone_greeting_sets_the_language_it_is_in(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    """A blind helper's first message "hola" was answered in English."""
    assert in_spanish((await say(client, "hola")).json()["reply"])


@pytest.mark.parametrize("request_", ["hola, hablo español", "en español por favor"])
async def test_asking_for_spanish_is_answered_in_spanish_and_never_taken_as_a_name(
    client: AsyncTestClient,  # type: ignore[type-arg]
    request_: str,
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    reply = (await say(client, request_)).json()
    assert in_spanish(reply["reply"]), reply
    assert reply["collected"] == []


@pytest.mark.parametrize(
    "place", ["Brownsville TX 78520", "Phoenix AZ 85004", "Los Angeles 90012", "New York NY 10001"]
)
async def test_a_place_keeps_a_spanish_conversation_spanish(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
    place: str,
) -> None:
    await say(client, "Hola, tuve un accidente de carro y me duele el cuello")
    await say(client, "Me llamo Carmen Ortiz, mi número es 305 555 0182")
    await say(client, "carmen@example.com")
    reply = (await say(client, place)).json()
    assert reply["step"] == "confirm"
    assert reply["reply"].startswith("Repaso sus datos"), reply
    await say(client, "sí")
    [lead] = await queued_leads(redis)
    assert (lead.language, lead.zip) == ("es", place.rsplit(maxsplit=1)[-1])


@pytest.mark.parametrize("place", ["El Paso TX 79901", "La Puente 91744", "San Antonio TX 78205"])
async def test_a_spanish_place_name_keeps_an_english_conversation_english(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
    place: str,
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    await say(client, "Ann Lee, 555-201-7788, ann@example.com")
    reply = (await say(client, place)).json()
    assert reply["reply"].startswith("Let me read that back"), reply
    await say(client, "yes")
    [lead] = await queued_leads(redis)
    assert (lead.language, lead.zip) == ("en", place.rsplit(maxsplit=1)[-1])


@pytest.mark.parametrize(
    "last_words", [["Yes correct"], ["my cell 4805550177", "sí"], ["yes that's right"]]
)
async def test_a_few_english_words_at_the_end_leave_a_spanish_speakers_lead_spanish(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
    last_words: list[str],
) -> None:
    """Replies may follow a switch; the lead goes in the language most of the visitor's words
    were in, so the attorney calls a Spanish speaker in Spanish."""
    await say(client, "Hola, tuve un accidente de carro y me duele mucho el cuello")
    await say(client, "Me llamo Carmen Ortiz y mi correo es carmen@example.com")
    if last_words[0].startswith("my cell"):
        await say(client, "vivo en Miami, el código postal es 33130")
    else:
        await say(client, "mi número es 305 555 0182 y el código postal es 33130")
    for message in last_words:
        await say(client, message)
    [lead] = await queued_leads(redis)
    assert lead.language == "es"


async def test_a_language_asked_for_is_the_leads_whatever_the_word_count(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    await say(client, "I was rear-ended on the freeway and my neck and back hurt a lot")
    assert in_spanish((await say(client, "en español por favor")).json()["reply"])
    await say(client, "Ana Ruiz, 305 555 0182, ana@example.com, 33130")
    await say(client, "sí")
    [lead] = await queued_leads(redis)
    assert lead.language == "es"


@pytest.mark.parametrize(
    "message", ["He's Bob Lee 213-555-0199", "my husband is Bob Lee, his cell is 213-555-0199"]
)
async def test_someone_elses_number_after_the_end_never_reaches_the_lead(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
    message: str,
) -> None:
    await confirmed(client)
    await say(client, message)
    [lead] = await queued_leads(redis)
    assert (lead.first_name, lead.last_name, lead.phone) == ("Ann", "Lee", "5552017788")


async def test_someone_elses_number_at_the_phone_step_is_refused_saying_so(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    await say(client, "Ann Lee")
    reply = (await say(client, "my husband is Bob Lee 213-555-0199")).json()
    assert reply["step"] == "phone"
    assert reply["reply"].startswith("Sorry, that number is someone else's; I need yours")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("ann@@gmail.com", "un correo electrónico lleva una sola @"),
        ("ann@gmail", "la parte después de la @ necesita un punto y una terminación"),
        ("@gmail.com", "un correo electrónico necesita un nombre antes de la @"),
    ],
)
async def test_a_spanish_email_re_ask_says_what_was_wrong_in_spanish(
    client: AsyncTestClient,  # type: ignore[type-arg]
    address: str,
    reason: str,
) -> None:
    await say(client, "Hola, tuve un accidente de carro y me duele el cuello")
    await say(client, "Me llamo Carmen Ortiz, mi número es 305 555 0182")
    reply = (await say(client, f"mi correo es {address}")).json()
    assert reply["step"] == "email"
    assert reason in reply["reply"], reply["reply"]


@pytest.mark.parametrize(
    ("opening", "no_email", "goes_on"),
    [
        ("I was rear-ended on the freeway and hurt my neck", "I don't have email", "No problem"),
        ("I was rear-ended on the freeway and hurt my neck", "none", "No problem"),
        (
            "Hola, tuve un accidente de carro y me duele el cuello",
            "no tengo correo",
            "No hay problema",
        ),
    ],
)
async def test_a_visitor_without_email_goes_on_and_the_lead_is_queued_without_one(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
    opening: str,
    no_email: str,
    goes_on: str,
) -> None:
    """A blind helper's visitor without email was asked again for ever: the lead was lost."""
    await say(client, opening)
    await say(client, "Ann Lee, 555-201-7788")
    reply = (await say(client, no_email)).json()
    assert (reply["step"], reply["reply"].split(":")[0]) == ("zip", goes_on)
    read_back = (await say(client, "90210")).json()
    assert read_back["step"] == "confirm"
    assert ("no email" in read_back["reply"]) or ("sin correo" in read_back["reply"])
    await say(client, "yes" if goes_on == "No problem" else "sí")
    [lead] = await queued_leads(redis)
    assert (lead.first_name, lead.phone, lead.email, lead.zip) == (
        "Ann",
        "5552017788",
        "",
        "90210",
    )


async def test_an_address_given_at_the_read_back_after_all_is_taken(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    await say(client, "Ann Lee, 555-201-7788")
    await say(client, "I don't have one")
    await say(client, "90210")
    reply = (await say(client, "actually my email is ann@example.com")).json()
    assert "email ann@example.com" in reply["reply"]
    await say(client, "yes")
    [lead] = await queued_leads(redis)
    assert lead.email == "ann@example.com"


@pytest.mark.parametrize(
    ("opening", "at_step", "correction", "category"),
    [
        (
            "I was rear-ended on the freeway and hurt my neck",
            [],
            "actually my problem is that I got fired",
            "employment",
        ),
        (
            "Hola, tuve un accidente de carro y me duele el cuello",
            ["Me llamo Ana Ruiz"],
            "en realidad es por un divorcio",
            "family",
        ),
    ],
)
async def test_a_visitor_who_corrects_the_matter_gets_the_new_practice_area(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
    opening: str,
    at_step: list[str],
    correction: str,
    category: str,
) -> None:
    """A blind helper's visitor who said what the matter really was kept the first one."""
    await say(client, opening)
    for message in at_step:
        await say(client, message)
    step_before = (await say(client, correction)).json()
    assert step_before["category"] == category
    await say(client, "Ann Lee, 555-201-7788, ann@example.com, 90210")
    await say(client, "yes" if opening.startswith("I") else "sí")
    [lead] = await queued_leads(redis)
    assert lead.category == category
    assert correction in lead.description


async def test_a_matter_corrected_at_the_read_back_is_read_back_again(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    await at_the_read_back(client)
    reply = (await say(client, "no it's not an accident, I got fired from my job")).json()
    assert (reply["step"], reply["category"]) == ("confirm", "employment")
    assert reply["reply"].startswith("Thanks, I've updated that. Let me read that back")
    assert "practice area: employment" in reply["reply"]
    await say(client, "yes")
    [lead] = await queued_leads(redis)
    assert lead.category == "employment"


@pytest.mark.parametrize(
    ("restart", "reply_starts"),
    [
        ("can we start over?", "Of course, let's start over"),
        ("quiero empezar de nuevo", "Claro, empecemos de nuevo"),
    ],
)
async def test_starting_over_forgets_the_conversation_before_the_lead_is_queued(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
    restart: str,
    reply_starts: str,
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    await say(client, "Bob Stone, 555-201-7700")
    reply = (await say(client, restart)).json()
    assert reply["reply"].startswith(reply_starts)
    assert (reply["step"], reply["category"], reply["collected"]) == ("describe", None, [])
    await say(client, "my landlord won't give back my security deposit")
    await say(client, "Ann Lee, 555-201-7788, ann@example.com, 90210")
    await say(client, "yes")
    [lead] = await queued_leads(redis)
    assert (lead.first_name, lead.phone, lead.category) == ("Ann", "5552017788", "real_estate")
    assert "rear-ended" not in lead.description


async def test_a_long_message_that_mentions_starting_over_is_no_restart(
    client: AsyncTestClient,  # type: ignore[type-arg]
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    reply = (
        await say(client, "Ann Lee. My employer made me start over on probation after the crash")
    ).json()
    assert reply["collected"] == ["name"]


# A second fresh helper's attack (issues 13 and 14), each kind as a conversation.


@pytest.mark.parametrize(
    ("turns", "first", "last"),
    [
        (["blanca estela", "559 218 3309", "blanca estela rosales"], "Blanca", "Estela Rosales"),
        (
            ["sarah mcdonald", "480-239-1125", "actually its sarah mcdonald-ross"],
            "Sarah",
            "McDonald-Ross",
        ),
        (["mi name es luis ortiz"], "Luis", "Ortiz"),
        (["im her son kevin smith"], "Kevin", "Smith"),
        (['my name is robert "bobby" tran jr'], "Robert", "Tran Jr"),
        (["mario\nlópez"], "Mario", "López"),
        (["\u200fomar haddad\u200f"], "Omar", "Haddad"),
        (["john\u200b smith"], "John", "Smith"),
    ],
)
async def test_names_as_a_blind_helper_typed_them_reach_the_lead(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
    turns: list[str],
    first: str,
    last: str,
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    for message in turns:
        await say(client, message)
    await say(client, "555-201-7788, ann@example.com, 90210")
    reply = (await say(client, "yes")).json()
    assert reply["step"] == "done", reply
    [lead] = await queued_leads(redis)
    assert (lead.first_name, lead.last_name) == (first, last)


async def test_a_name_corrected_at_the_read_back_is_read_back_again(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    await say(client, "Ann Lee, 555-201-7788, ann@example.com, 90210")
    reply = (await say(client, "its ann lee-ross")).json()
    assert reply["reply"].startswith(
        "Thanks, I've updated that. Let me read that back: Ann Lee-Ross"
    )
    await say(client, "yes")
    [lead] = await queued_leads(redis)
    assert lead.last_name == "Lee-Ross"


@pytest.mark.parametrize("yes", ["claro que si", "ta bien", "dale", "okey", "simon", "sure", "y"])
async def test_everyday_yeses_queue_the_lead(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
    yes: str,
) -> None:
    await at_the_read_back(client)
    assert (await say(client, yes)).json()["step"] == "done"
    assert len(await queued_leads(redis)) == 1


@pytest.mark.parametrize(
    ("correction", "phone"),
    [
        ("sorry my number is 480-239-1125", "4802391125"),
        ("perdón me equivoqué, mi número es 323 491 5520", "3234915520"),
    ],
)
async def test_a_correction_at_a_later_step_is_thanked_for_not_called_a_miss(
    client: AsyncTestClient,
    redis: Redis,  # type: ignore[type-arg]
    correction: str,
    phone: str,
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    await say(client, "Ann Lee, 555-201-7788")
    reply = (await say(client, correction)).json()
    assert reply["step"] == "email"
    assert not reply["reply"].startswith(("Sorry", "Disculpe")), reply["reply"]
    assert reply["reply"].startswith(("Thanks, I've updated that.", "Gracias, ya lo actualicé."))
    await say(client, "ann@example.com, 90210")
    await say(client, "yes")
    [lead] = await queued_leads(redis)
    assert lead.phone == phone


@pytest.mark.parametrize(
    ("message", "phone", "email", "zip_code"),
    [
        (
            "john o'connor 602 418 8891 johnoc@gmail.com 85004",
            "6024188891",
            "johnoc@gmail.com",
            "85004",
        ),
        (
            "787 555 2190 pero mejor llamame al 787 641 2190, ana@example.com, 00907",
            "7876412190",
            "ana@example.com",
            "00907",
        ),
        ("210\n845\n3399\nann@example.com\n90210", "2108453399", "ann@example.com", "90210"),
        (
            "mi correo es maria punto gomez arroba gmail punto com",
            None,
            "maria.gomez@gmail.com",
            None,
        ),
    ],
)
async def test_details_typed_loosely_all_reach_the_read_back(
    client: AsyncTestClient,  # type: ignore[type-arg]
    message: str,
    phone: str | None,
    email: str,
    zip_code: str | None,
) -> None:
    await say(client, "I was rear-ended on the freeway and hurt my neck")
    await say(client, "Ann Lee")
    if phone is None:
        await say(client, "555-201-7788")
    reply = (await say(client, message)).json()
    expected = ["name", "phone", "email"] + (["zip"] if zip_code else [])
    assert reply["collected"] == expected, reply


async def test_a_body_with_a_byte_order_mark_is_read(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    reply = await client.post(
        "/api/chat",
        content=b"\xef\xbb\xbf" + b'{"message": "I was rear-ended on the freeway"}',
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 200, reply.text
