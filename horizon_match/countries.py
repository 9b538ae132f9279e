"""Country codes as the EU research programmes use them.

Codes are ISO 3166-1 alpha-2, except that the Commission (and so CORDIS) writes EL for
Greece and UK for the United Kingdom, and uses XK for Kosovo. horizon-match stores the
Commission's form so that member profiles and CORDIS organisations compare equal; the
ISO forms GR and GB are accepted on input and turned into EL and UK.
"""

from __future__ import annotations

# Every officially assigned ISO 3166-1 alpha-2 code (249).
ISO_3166_ALPHA2 = frozenset("""
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET
    FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
    HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT
    JE JM JO JP
    KE KG KH KI KM KN KP KR KW KY KZ
    LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
    NA NC NE NF NG NI NL NO NP NR NU NZ
    OM
    PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA
    RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
    UA UG UM US UY UZ
    VA VC VE VG VI VN VU
    WF WS
    YE YT
    ZA ZM ZW
    """.split())

# ISO code -> the code the Commission uses.
TO_EU_CODE = {"GR": "EL", "GB": "UK"}

# The 27 EU member states, in the Commission's codes.
EU_MEMBER_STATES = frozenset(
    "AT BE BG CY CZ DE DK EE EL ES FI FR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)

# Countries associated to Horizon Europe (agreements in force or applied provisionally as of
# 2025); their entities take part on the same terms as those of member states.
HORIZON_ASSOCIATED_COUNTRIES = frozenset(
    "AL AM BA CA CH FO GE IL IS KR MD ME MK NO NZ RS TN TR UA UK XK".split()
)

# Every code accepted after normalisation.
KNOWN_COUNTRIES = frozenset((ISO_3166_ALPHA2 - set(TO_EU_CODE)) | set(TO_EU_CODE.values()) | {"XK"})


def normalise_country(code: str) -> str | None:
    """The Commission's form of a country code (GR -> EL, gb -> UK), or None if unknown."""
    upper = code.strip().upper()
    upper = TO_EU_CODE.get(upper, upper)
    return upper if upper in KNOWN_COUNTRIES else None
