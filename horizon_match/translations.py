"""The fixed wording of the emails, in English and Italian, with dates and amounts in local style.

Only the text horizon-match writes itself is translated; call titles and reasons stay as the
portal and the matcher wrote them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

LANGUAGES = ("en", "it")

MONTHS = {
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
    "it": (
        "gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno",
        "luglio", "agosto", "settembre", "ottobre", "novembre", "dicembre",
    ),
}

STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "subject_one": "1 new EU call for {name}",
        "subject_many": "{n} new EU calls for {name}",
        "subject_reminders": "EU call deadlines approaching for {name}",
        "subject_consortium_one": "{name}: proposed lead of a team for an EU call",
        "subject_consortium_many": "{name}: proposed lead of teams for {n} EU calls",
        "greeting": "Hello {name},",
        "intro": "these open or forthcoming EU calls fit your profile. Best match first; "
        "situation on {date}.",
        "intro_none": "no new calls fit your profile this week.",
        "programme": "Programme",
        "type_of_action": "Type of action",
        "budget": "Budget",
        "deadline": "Deadline",
        "why": "Why",
        "open_portal": "Open on the Funding & Tenders Portal",
        "stage": "stage {n}",
        "days_left_one": "1 day left",
        "days_left_many": "{n} days left",
        "today": "today",
        "no_deadline": "no deadline published yet",
        "not_given": "not given",
        "teams_title": "Teams you were proposed for",
        "team": "Team {rank}",
        "lead": "lead",
        "coordinator": "coordinator",
        "partner": "partner",
        "you": "you",
        "covers": "covers",
        "missing": "Still missing",
        "eligible": "meets the basic consortium rules",
        "not_eligible": "does not yet meet the consortium rules",
        "reminders_title": "Closing soon",
        "reminders_intro": "You received these calls earlier; their deadline is near.",
        "calendar_note": "The attached deadlines.ics puts these deadlines in your calendar; "
        "importing a newer one updates them.",
        "consortium_intro": "horizon-match proposes {name} as lead of the teams below. Each team "
        "is a starting point: contact the partners, check who covers which part of the call "
        "and what is still missing.",
        "partners": "Partners",
        "footer": "You receive this email because {name} is a member of the club and its profile "
        "lists this address. Reply to this email to reach the club staff.",
        "unsubscribe_link": "Unsubscribe",
        "unsubscribe_mail": "To stop these emails, reply with the subject: unsubscribe {token}",
        "calendar_name": "EU call deadlines",
        "event_summary": "Deadline: {title} ({identifier})",
        "alarm": "Deadline in 7 days: {identifier}",
        "kind_company": "company",
        "kind_university": "university",
        "kind_research": "research",
        "kind_public": "public body",
        "kind_other": "other",
        # a match's reason, worded from the parts the matcher stores
        "shared_terms": "shared terms",
        "your_project": "your project “{title}”",
        "your_description": "your description",
        "your_keywords": "your keywords",
        "your_profile": "your profile",
        "track_destination_one": "1 past project in this destination ({place})",
        "track_destination_many": "{n} past projects in this destination ({place})",
        "track_part_one": "1 past project in {place}",
        "track_part_many": "{n} past projects in {place}",
    },
    "it": {
        "subject_one": "1 nuovo bando UE per {name}",
        "subject_many": "{n} nuovi bandi UE per {name}",
        "subject_reminders": "Scadenze di bandi UE in arrivo per {name}",
        "subject_consortium_one": "{name}: proposta come capofila di un team per un bando UE",
        "subject_consortium_many": "{name}: proposta come capofila di team per {n} bandi UE",
        "greeting": "Buongiorno {name},",
        "intro": "questi bandi UE aperti o in apertura sono in linea con il vostro profilo, "
        "dal più pertinente; situazione al {date}.",
        "intro_none": "questa settimana non ci sono nuovi bandi in linea con il vostro profilo.",
        "programme": "Programma",
        "type_of_action": "Tipo di azione",
        "budget": "Budget",
        "deadline": "Scadenza",
        "why": "Perché",
        "open_portal": "Apri sul Funding & Tenders Portal",
        "stage": "fase {n}",
        "days_left_one": "manca 1 giorno",
        "days_left_many": "mancano {n} giorni",
        "today": "oggi",
        "no_deadline": "scadenza non ancora pubblicata",
        "not_given": "non indicato",
        "teams_title": "Team in cui siete stati proposti",
        "team": "Team {rank}",
        "lead": "capofila",
        "coordinator": "coordinatore",
        "partner": "partner",
        "you": "voi",
        "covers": "copre",
        "missing": "Manca ancora",
        "eligible": "rispetta i requisiti di base del consorzio",
        "not_eligible": "non rispetta ancora i requisiti del consorzio",
        "reminders_title": "In scadenza",
        "reminders_intro": "Avete già ricevuto questi bandi; la scadenza si avvicina.",
        "calendar_note": "Il file allegato deadlines.ics aggiunge queste scadenze al vostro "
        "calendario; importarne uno più recente le aggiorna.",
        "consortium_intro": "horizon-match propone {name} come capofila dei team qui sotto. Ogni "
        "team è un punto di partenza: contattate i partner, verificate chi copre quale parte "
        "del bando e che cosa manca ancora.",
        "partners": "Partner",
        "footer": "Ricevete questa email perché {name} è socio del club e il suo profilo indica "
        "questo indirizzo. Rispondete a questa email per scrivere allo staff del club.",
        "unsubscribe_link": "Annulla l'iscrizione",
        "unsubscribe_mail": "Per non ricevere più queste email, rispondete con oggetto: "
        "unsubscribe {token}",
        "calendar_name": "Scadenze bandi UE",
        "event_summary": "Scadenza: {title} ({identifier})",
        "alarm": "Scadenza tra 7 giorni: {identifier}",
        "kind_company": "impresa",
        "kind_university": "università",
        "kind_research": "ente di ricerca",
        "kind_public": "ente pubblico",
        "kind_other": "altro",
        "shared_terms": "termini in comune",
        "your_project": "il vostro progetto “{title}”",
        "your_description": "la vostra descrizione",
        "your_keywords": "le vostre parole chiave",
        "your_profile": "il vostro profilo",
        "track_destination_one": "1 vostro progetto passato in questa destination ({place})",
        "track_destination_many": "{n} vostri progetti passati in questa destination ({place})",
        "track_part_one": "1 vostro progetto passato in {place}",
        "track_part_many": "{n} vostri progetti passati in {place}",
    },
}


# Why a partner is in a proposed team: horizon_match.teams words these in English (they are
# stored with the team and shown by the CLI); an email in another language rewords them here.
# Each pattern is one of teams.py's sentences; a reason that matches none stays as it is.
TEAM_REASONS: dict[str, list[tuple[str, str]]] = {
    "it": [
        (r"club member leading the team(?P<rest>;.*)?", "socio del club alla guida del team{rest}"),
        (r"leads the team(?P<rest>;.*)?", "guida il team{rest}"),
        (r"club member", "socio del club"),
        (r"1 EU project(?P<rest>,.*)?", "1 progetto UE{rest}"),
        (r"(?P<n>\d+) EU projects(?P<rest>,.*)?", "{n} progetti UE{rest}"),
        (r"adds a partner from (?P<country>.+)", "aggiunge un partner da {country}"),
        (r"worked before with (?P<names>.+)", "ha già lavorato con {names}"),
        (r"brings (?P<kinds>.+)", "porta {kinds}"),
        (r"covers what the team lacks", "copre ciò che manca al team"),
    ],
}
# What a proposed team still lacks: sentences of horizon_match.eligibility and teams.
TEAM_MISSING: dict[str, list[tuple[str, str]]] = {
    "it": [
        (r"needs one organisation established in an EU member state or associated country "
         r"\((?P<label>.+)\)",
         "serve un'organizzazione stabilita in uno Stato membro UE o in un paese associato "
         "({label})"),
        (r"needs 1 more partner: a (?P<label>.+?) requires (?P<note>.+)",
         "serve 1 partner in più: una {label} richiede {note}"),
        (r"needs (?P<n>\d+) more partners: a (?P<label>.+?) requires (?P<note>.+)",
         "servono {n} partner in più: una {label} richiede {note}"),
        (r"needs a partner from another EU member state or associated country",
         "serve un partner di un altro Stato membro UE o paese associato"),
        (r"needs partners from (?P<n>\d+) more EU member states or associated countries "
         r"\(the team covers none\)",
         "servono partner di altri {n} Stati membri UE o paesi associati"),
        (r"needs partners from (?P<n>\d+) more EU member states or associated countries "
         r"\(the team covers (?P<names>.+)\)",
         "servono partner di altri {n} Stati membri UE o paesi associati (il team copre {names})"),
        (r"needs at least one partner established in an EU member state",
         "serve almeno un partner stabilito in uno Stato membro UE"),
        (r"needs (?P<n>\d+) public procurers \(buyers\) from (?P<m>\d+) different countries",
         "servono {n} acquirenti pubblici di {m} paesi diversi"),
        (r"partners from (?P<names>.+) do not count: only entities in EU member states or "
         r"associated countries are eligible for funding by default",
         "i partner di {names} non contano: di norma solo gli enti di Stati membri UE o paesi "
         "associati possono ricevere finanziamenti"),
        (r"only (?P<n>\d+) suitable organisation\(s\) found for a team of (?P<m>\d+)",
         "trovate solo {n} organizzazioni adatte per un team di {m}"),
        (r"no (?P<kinds>.+?) in the team(?P<rest>: .+)?", "nel team manca {kinds}{rest}"),
    ],
}
TEAM_REASON_WORDS: dict[str, dict[str, str]] = {
    "it": {
        " as coordinator": " come coordinatore",
        "a university or research organisation": "un'università o un ente di ricerca",
        "an industrial partner (company)": "un partner industriale (impresa)",
        "an SME": "una PMI",
        "a public body (end user or public buyer)": "un ente pubblico (utente finale o "
        "acquirente pubblico)",
        " and ": " e ",
        # after "no ... in the team", without their article
        "university or research organisation": "un'università o un ente di ricerca",
        "industrial partner (company)": "un partner industriale (impresa)",
        "public body (end user or public buyer)": "un ente pubblico (utente finale o "
        "acquirente pubblico)",
        "SME": "una PMI",
        # the consortium rules (eligibility.RULES and teams.KIND_WHY)
        "at least 3 independent legal entities from 3 different EU member states or associated "
        "countries, one of them in a member state": "almeno 3 enti giuridici indipendenti di 3 "
        "diversi Stati membri UE o paesi associati, di cui uno in uno Stato membro",
        ", with at least 2 public procurers (buyers) from 2 different countries": ", con almeno "
        "2 acquirenti pubblici di 2 paesi diversi",
        " (the standard rule; check the topic's conditions)": " (la regola generale; verificate "
        "le condizioni del bando)",
        "at least 1 legal entity from an EU member state or associated country": "almeno 1 ente "
        "giuridico di uno Stato membro UE o paese associato",
        "at least 3 independent legal entities from 3 different countries, 2 of them in EU "
        "member states or associated countries": "almeno 3 enti giuridici indipendenti di 3 "
        "paesi diversi, di cui 2 in Stati membri UE o paesi associati",
        "research and innovation actions are usually led by research with industry": "le azioni "
        "di ricerca e innovazione sono di solito guidate dalla ricerca insieme all'industria",
        "innovation actions expect industry, often SMEs, to take up the results": "le azioni di "
        "innovazione si aspettano che l'industria, spesso PMI, ne sfrutti i risultati",
        "support actions usually involve research organisations and public bodies": "le azioni "
        "di supporto coinvolgono di solito enti di ricerca ed enti pubblici",
        "procurement actions are carried by public buyers with suppliers": "le azioni di appalto "
        "sono condotte da acquirenti pubblici con i fornitori",
    },
}


def choose_language(language: str | None, preferences: Mapping[str, object] | None = None) -> str:
    """The member's language if we have its wording, else the first preferred one, else English."""
    candidates: list[object] = [language]
    prefs = preferences or {}
    langs = prefs.get("languages")
    if isinstance(langs, list):
        candidates.extend(langs)
    for cand in candidates:
        if isinstance(cand, str) and cand.strip().lower()[:2] in LANGUAGES:
            return cand.strip().lower()[:2]
    return "en"


def format_date(value: date, lang: str) -> str:
    return f"{value.day} {MONTHS[lang][value.month - 1]} {value.year}"


def format_money(amount: float, lang: str) -> str:
    whole = f"{round(amount):,}"
    if lang == "it":
        return whole.replace(",", ".") + " EUR"
    return "EUR " + whole


def track_sentence(detail: object, words: Mapping[str, str]) -> str:
    """A match's track record ({"projects": n, "in": "destination" | "part", "place": ...},
    as the matcher stores it) as a sentence in `words`' language; '' when there is none."""
    if not isinstance(detail, Mapping) or detail.get("in") not in ("destination", "part"):
        return ""
    n = detail.get("projects")
    if not isinstance(n, int) or n <= 0:
        return ""
    key = f"track_{detail['in']}_{'one' if n == 1 else 'many'}"
    return words[key].format(n=n, place=detail.get("place", ""))


def reason_line(
    explanation: Mapping[str, object], words: Mapping[str, str], clip: Callable[[str, int], str]
) -> str:
    """A match's one line for an email, in `words`' language: the terms member and call
    share, the member's text that fits best, its track record ('' when none of those).
    `clip(text, limit)` shortens a quoted text. The matcher writes the English line with it
    when it explains a match; an email in another language words it again from the parts."""
    pieces = []
    terms = explanation.get("shared_terms")
    if isinstance(terms, list):
        kept = [t for t in terms[:4] if isinstance(t, str) and t]
        if kept:
            pieces.append(f"{words['shared_terms']}: {', '.join(kept)}")
    source = explanation.get("member_source")
    source = source if isinstance(source, str) else ""
    passage = explanation.get("member_passage")
    if source.startswith("project: "):
        pieces.append(words["your_project"].format(title=clip(source[9:], 60)))
    elif isinstance(passage, str) and passage:
        label = words.get(f"your_{source}", words["your_profile"])
        pieces.append(f"{label}: \u201c{clip(passage, 70)}\u201d")
    track = track_sentence(explanation.get("track_detail"), words)
    if track:
        pieces.append(track)
    return "; ".join(pieces)
