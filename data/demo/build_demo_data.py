"""Build the shipped demo data from a CORDIS dev-format folder.

    python data/demo/build_demo_data.py ../shared/data/cordis_dev

Writes, next to this script:

- members.jsonl   Genoa organisations found in the CORDIS data (profiles written from their
                  real 2022 projects, keyed by their real PIC) plus a few fictional Genoa SMEs
                  and start-ups described in Italian;
- cordis/         the CORDIS subset those members' profiles and the demo consortia need: every
                  project with at least one demo member's PIC, with all organisation rows of
                  those projects and their EuroSciVoc labels, in the original columns, gzipped;
- calls.jsonl     the live 2026-27 Horizon Europe topics as normalized call records.

It is not run at install time: its outputs are committed. Running it again on the same input
gives byte-identical files (gzip without timestamps, stable order).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent

ORGANISATION_TYPES = {
    "HES": "university",
    "REC": "research",
    "PRC": "company",
    "PUB": "public",
    "OTH": "other",
}

# NUTS-3 regions of Liguria; the CORDIS city field is the registered address as typed by the
# organisation (e.g. "GENOVA GE"), so the region decides and the city is normalised below.
LIGURIA_NUTS = {"ITC31": "Imperia", "ITC32": "Savona", "ITC33": "Genova", "ITC34": "La Spezia"}

TOPIC_URL = (
    "https://ec.europa.eu/info/funding-tenders/opportunities/portal/screen/opportunities/"
    "topic-details/"
)
HORIZON_PROGRAMME_ID = "43108390"

# --- profiles of real organisations ---------------------------------------------------------
# Keyed by PIC. Each description only states what the organisation's own 2022 Horizon Europe
# projects in the CORDIS data show (project acronyms in brackets), nothing else.
REAL_PROFILES: dict[str, dict] = {
    "999596447": {
        "id": "iit",
        "name": "Fondazione Istituto Italiano di Tecnologia (IIT)",
        "description": (
            "Research foundation headquartered in Genoa with a large Horizon Europe portfolio "
            "of ERC, EIC Pathfinder, MSCA and Cluster 4 projects. Nanomaterials and "
            "nanocrystals: metal-halide perovskite heterostructures and near-infrared LEDs "
            "(NEHA, MaDLED), conductive oxide nanoinks from non-critical raw materials "
            "(CONDINKS), nanocomposite scintillators for radiation detection (UNICORN), "
            "plasmonic and photocatalytic nanomaterials (DELIGHT, DELATOP). Bioelectronics and "
            "medical devices: implantable in-vessel sensors (IV-Lab), edible biosensors "
            "(EDISENS), DNA-carbon nanotube electronics (3D-BRICKS), a microMESH implant against "
            "brain cancer, in vitro models and microfluidics (MagDock, DROPTRACK, Micro-SENSE). "
            "Imaging and neuroscience: Brillouin and two-photon microscopy (IVBM-4PAP, "
            "FaBriCATion, AstroScope), autism and early intervention for infants with visual "
            "impairment (AUTISMS-3D, iReach), nanotoxicity (iCare). Robotics and AI: "
            "human-robot interaction and neurorobotics (PRIMI, MAGICIAN), AI-driven robotic "
            "assembly (MASTERLY), soft haptics for prosthetics (WISH), AI for sustainability "
            "(ELIAS); 5G/6G large-scale trials (TrialsNet)."
        ),
        "keywords": [
            "nanomaterials", "perovskites", "nanocrystals", "bioelectronics",
            "implantable sensors", "microscopy", "neuroscience", "robotics",
            "human-robot interaction", "artificial intelligence", "haptics", "nanomedicine",
            "microfluidics",
        ],
    },
    "999951467": {
        "id": "rina-consulting",
        "name": "RINA Consulting S.p.A.",
        "description": (
            "Engineering and consulting company in Genoa, coordinator or partner of many "
            "Horizon Europe innovation actions. Energy: storage and hybrid storage integration "
            "(SINNOGENES, AGISTIN), demand-side flexibility markets and energy communities "
            "(REEFLEX, COMMUNITAS), positive-energy homes (RENplusHOMES, coordinator), building "
            "automation for historic buildings (SMARTeeSTORY, coordinator), smart buildings "
            "(BuildON, EVELIXIA), climate resilience of the built environment (MULTICLIMACT, "
            "coordinator; MULTICARE). Hydrogen and fuels: renewable hydrogen production and "
            "hydrogen valleys (EPHYRA, TH2ICINO coordinator, ANDREAH), carbon capture to liquid "
            "energy carriers (CAPTUS), e-methanol for ship propulsion (POSEIDON). Materials and "
            "circularity: graphite supply chain for battery anodes (GR4FITE3, coordinator), "
            "recycling of glass-fibre composites from wind blades (REFRESH, coordinator), "
            "supercapacitors (HEDAsupercap), bio-based coatings and composites (TORNADO, FURHY), "
            "materials characterisation and modelling (MatCHMaker), blockchain building "
            "logbooks (BUILDCHAIN). Transport and environment: electrified bus rapid transit "
            "(EBRT2030), low-impact and resilient transport infrastructure and logistics "
            "(LIAISON, SARIL, KEYSTONE), aviation (Di-PEGASUS), chemical pollution of the "
            "Mediterranean (RHE-MEDiation, coordinator), agri-food (GUARDIANS, TEAPOTS)."
        ),
        "keywords": [
            "energy storage", "flexibility", "energy communities", "smart buildings",
            "hydrogen", "e-fuels", "carbon capture", "circular economy", "batteries",
            "composites recycling", "transport infrastructure", "climate resilience",
            "digital twin",
        ],
    },
    "999976687": {
        "id": "unige",
        "name": "Università degli Studi di Genova",
        "description": (
            "Public university of Genoa. Maritime and transport: safe navigation and collision "
            "avoidance (SafeNav), shipboard hybrid energy storage (V-ACCESS), hydrogen for "
            "inland waterway vessels (RH2IWER), railway research (Academics4Rail), maritime "
            "history (MedMaD). Energy: hybrid and thermal energy storage and flexibility "
            "services (FlexCHESS, THUMBS UP, SINNOGENES), smart grid-efficient buildings "
            "(EVELIXIA), carbon capture and utilisation (CAPTUS), CO2 electroreduction "
            "(FOTOCER), green hydrogen in Africa (JUST-GREEN AFRH2ICA, coordinator). Digital: "
            "trusted electronics for SMEs (Resilient Trust), interoperable production networks "
            "(Arrowhead FPVN), deep learning for solar flare forecasting (ARCAFF), AI-based "
            "brain organoid platforms (3D-BrAIn), serious games for disaster preparedness "
            "(B-prepared). Food and life sciences: marine and freshwater functional food "
            "(NOVAFOODIES), forensic science (Natural Traces). Social sciences: urban "
            "inequality and law (HABITAT, ERC), extremist narratives (ARENAS)."
        ),
        "keywords": [
            "maritime safety", "shipboard energy storage", "energy storage", "hydrogen",
            "carbon capture", "railway", "interoperability", "deep learning", "space weather",
            "brain organoids", "serious games", "social sciences",
        ],
    },
    "916965542": {
        "id": "stam",
        "name": "STAM S.r.l.",
        "description": (
            "Engineering SME in Genoa taking part in many Horizon Europe projects. Hydrogen: "
            "hydrogen for the glass and aluminium industries (H2GLASS), a test bed for "
            "electrolysis materials (CLEANHYPRO), green hydrogen in Africa (JUST-GREEN "
            "AFRH2ICA). Energy: thermal energy storage (HYSTORE) and residential demand "
            "response (DR-RISE). Materials and manufacturing: open innovation test beds for "
            "climate-neutral and building-envelope materials (Convert2Green, Exploit4InnoMat), "
            "additively manufactured magnetic components for electric machines (MultiMag), "
            "AI-driven robotic handling and assembly (MASTERLY). Digital and security: green "
            "5G/6G architectures (6Green), AI for customs control of passenger baggage "
            "(BAG-INTEL), EGNSS road pavement scanning (PAVE-SCAN). Also agri-waste pyrolysis "
            "(TEAPOTS) and regional R&I ecosystems (COOPERATE)."
        ),
        "keywords": [
            "hydrogen", "electrolysis", "thermal energy storage", "demand response",
            "open innovation test bed", "additive manufacturing", "robotics", "6G",
            "customs security", "EGNSS",
        ],
    },
    "998801823": {
        "id": "hitachi-rail-sts",
        "name": "Hitachi Rail STS S.p.A.",
        "description": (
            "Railway company, partner in the six Europe's Rail flagship projects of 2022: "
            "digital automated up to autonomous train operation (FP2 R2DATO), multimodal "
            "mobility management and digital enablers (FP1 MOTIONAL), holistic asset "
            "management and rail robotics (FP3 IAM4RAIL), sustainable and green rail systems "
            "(FP4 Rail4EARTH), digital rail freight (FP5 TRANS4M-R) and regional rail "
            "services (FP6 FutuRe)."
        ),
        "keywords": [
            "railway", "signalling", "automated train operation", "rail asset management",
            "rail freight", "regional rail", "mobility management",
        ],
    },
    "892082035": {
        "id": "mermec-ste",
        "name": "MERMEC STE S.r.l.",
        "description": (
            "Railway technology company in Genoa, linked third party in Europe's Rail flagship "
            "projects on automated train operation (FP2 R2DATO), mobility management (FP1 "
            "MOTIONAL), rail asset management (FP3 IAM4RAIL) and regional rail services "
            "(FP6 FutuRe)."
        ),
        "keywords": ["railway", "automated train operation", "rail asset management"],
    },
    "991672808": {
        "id": "ett",
        "name": "ETT S.p.A.",
        "description": (
            "Digital SME in Genoa working on ocean data and heritage: the federated FAIR "
            "research ecosystem for oceans and seas (Blue-Cloud 2026), protection and "
            "restoration management of Mediterranean marine protected areas (EFFECTIVE), and "
            "low-emission renovation of cultural heritage buildings (CALECHE)."
        ),
        "keywords": [
            "digital ocean", "FAIR data", "marine protected areas", "cultural heritage",
            "digital platforms",
        ],
    },
    "990822021": {
        "id": "rina-services",
        "name": "RINA Services S.p.A.",
        "description": (
            "Genoa company of the RINA group working on waterborne transport: partner in "
            "projects on ship retrofits for 55% greenhouse-gas reduction (RETROFIT55), large "
            "modular battery systems safely integrated on board ships (FLEXSHIP) and safe "
            "marine transport of liquid hydrogen (LH2CRAFT)."
        ),
        "keywords": [
            "maritime safety", "ship retrofit", "ship electrification",
            "liquid hydrogen", "zero-emission waterborne transport",
        ],
    },
    "900899626": {
        "id": "bedimensional",
        "name": "BeDimensional S.p.A.",
        "description": (
            "Genoa company working with 2D materials: coordinator of GREENCAP (graphene, MXene "
            "and ionic-liquid supercapacitors free of critical raw materials) and partner in "
            "PERSEUS (2D-material nano-vehicles for X-ray-triggered cancer therapy)."
        ),
        "keywords": ["graphene", "2D materials", "MXenes", "supercapacitors", "nanomedicine"],
    },
    "929055331": {
        "id": "ebit",
        "name": "EBIT S.r.l.",
        "description": (
            "Genoa company in health ICT and AI: partner in SEPTON (cybersecurity toolkit for "
            "networked, wearable and implantable medical devices in hospitals) and HumAIne "
            "(hybrid human-AI decision support with active, swarm and explainable learning)."
        ),
        "keywords": [
            "cybersecurity", "medical devices", "healthcare", "explainable AI",
            "decision support",
        ],
    },
    "919211383": {
        "id": "bluenergy-revolution",
        "name": "Bluenergy Revolution S.c.r.l.",
        "description": (
            "Energy consortium company in Genoa: partner in EVELIXIA (smart grid-efficient "
            "interactive buildings, building-to-grid integration) and linked third party in "
            "JUST-GREEN AFRH2ICA (just transition to green hydrogen in Africa)."
        ),
        "keywords": ["smart buildings", "building-to-grid", "green hydrogen", "energy transition"],
    },
    "887728190": {
        "id": "softjam",
        "name": "Softjam S.p.A.",
        "description": (
            "Genoa ICT company, partner in GREENER: a compact spectrometer with single-photon "
            "sources and detectors based on quantum dots and DNA origami, to detect endocrine "
            "disruptors in water at sub-ng/L concentrations."
        ),
        "keywords": ["photonics", "biosensors", "water monitoring", "quantum dots"],
    },
    "998354459": {
        "id": "ansaldo-energia",
        "name": "Ansaldo Energia S.p.A.",
        "description": (
            "Genoa power-generation company, coordinator of FLEX4H2 (Clean Hydrogen JU): "
            "low-emission, fuel-flexible combustion of up to pure hydrogen in large gas "
            "turbines with constant pressure sequential combustion, without diluents."
        ),
        "keywords": ["gas turbines", "hydrogen combustion", "power generation", "decarbonisation"],
    },
    "998295095": {
        "id": "comune-genova",
        "name": "Comune di Genova",
        "description": (
            "The City of Genoa, partner in AI4Gov: trusted, explainable and fair AI for "
            "transparent public governance and democratic values."
        ),
        "keywords": ["public administration", "trustworthy AI", "smart city", "governance"],
    },
    "952531562": {
        "id": "rulex",
        "name": "Rulex Innovation Labs S.r.l.",
        "description": (
            "Genoa AI SME, partner in Resilient Trust (KDT JU): trusted and resilient "
            "AI-assisted IoT and cyber-physical systems by and for SMEs."
        ),
        "keywords": [
            "artificial intelligence", "IoT security", "cyber-physical systems",
            "trusted electronics",
        ],
    },
    "968352165": {
        "id": "asg-superconductors",
        "name": "ASG Superconductors S.p.A.",
        "description": (
            "Genoa superconductor company, partner in V-ACCESS: hybrid "
            "shipboard energy storage combining batteries with supercapacitors and "
            "superconducting magnetic energy storage (SMES) on a DC microgrid."
        ),
        "keywords": ["superconductivity", "SMES", "energy storage", "shipboard power systems"],
    },
    "886559922": {
        "id": "h2boat",
        "name": "H2Boat S.r.l.",
        "description": (
            "Genoa SME working on hydrogen for vessels: linked third party in RH2IWER "
            "(renewable hydrogen and fuel cells for inland waterway container, bulk and tanker "
            "vessels)."
        ),
        "keywords": ["hydrogen", "fuel cells", "vessels", "waterborne transport"],
    },
    "898621775": {
        "id": "sim4future",
        "name": "Sim4Future S.r.l.s.",
        "description": (
            "Genoa SME, partner in LoLiPoP IoT (Chips JU): long-life power platforms with "
            "energy harvesting and power management for wireless sensor networks, asset "
            "tracking and condition monitoring."
        ),
        "keywords": ["IoT", "energy harvesting", "power management", "condition monitoring"],
    },
    "905493546": {
        "id": "zenabyte",
        "name": "Zenabyte S.r.l.",
        "description": (
            "Genoa SME in cybersecurity, partner in SEC-AIRSPACE (SESAR JU): cyber-security "
            "risk assessment for virtualised air traffic management and people analytics for "
            "security awareness."
        ),
        "keywords": ["cybersecurity", "risk assessment", "air traffic management"],
    },
    "998374053": {
        "id": "graal-tech",
        "name": "Graal Tech S.r.l.",
        "description": (
            "Genoa SME in ocean technology, partner in DIGI4ECO (Mission Ocean): digital twin "
            "based 4D ecological monitoring of restoration in fishery-depleted areas, "
            "harmonising oceanographic sensor and video data."
        ),
        "keywords": ["digital twin of the ocean", "marine monitoring", "oceanographic data"],
    },
    "941009514": {
        "id": "t-bridge",
        "name": "T Bridge S.p.A.",
        "description": (
            "Genoa transport and logistics IT company, partner in KEYSTONE: interoperable "
            "digital solutions that give enforcement authorities access to freight and "
            "passenger transport data for resilient, sustainable transport operations."
        ),
        "keywords": ["logistics", "transport data", "interoperability", "freight"],
    },
    "936556535": {
        "id": "amt-genova",
        "name": "AMT - Azienda Mobilità e Trasporti S.p.A.",
        "description": (
            "Genoa mobility and transport company, partner in PAVE-SCAN: EGNSS sensors and "
            "machine vision to detect and georeference road pavement anomalies."
        ),
        "keywords": ["public transport", "road infrastructure", "EGNSS", "mobility"],
    },
}

# --- fictional Italian SMEs and start-ups ---------------------------------------------------
# Written for the demo: these firms do not exist; names, addresses and projects are invented.
FICTIONAL_PROFILES: list[dict] = [
    {
        "id": "lanterna-subsea",
        "name": "Lanterna Subsea Robotics S.r.l.",
        "emails": ["bandi@lanterna-subsea.example"],
        "country": "IT",
        "city": "Genova",
        "organisation_type": "company",
        "size": "startup",
        "sme": True,
        "description": (
            "Start-up genovese che progetta veicoli subacquei autonomi (AUV) e filoguidati "
            "(ROV) compatti per l'ispezione di banchine, dighe foranee, scafi e condotte "
            "sottomarine. Sviluppa software di navigazione e di visione artificiale per "
            "operare in acque portuali torbide, con ricostruzione 3D delle strutture e "
            "riconoscimento automatico di corrosione, fessurazioni e incrostazioni biologiche. "
            "Cerca partner per progetti di robotica marina, monitoraggio dell'ambiente marino "
            "e manutenzione predittiva delle infrastrutture portuali."
        ),
        "keywords": [
            "robotica marina", "veicoli subacquei autonomi", "ROV",
            "ispezione di infrastrutture portuali", "visione artificiale",
            "monitoraggio marino",
        ],
        "past_projects": [
            {
                "title": "Ispezione robotizzata delle banchine portuali",
                "summary": (
                    "Progetto pilota regionale: un ROV con sonar multifascio e telecamere ha "
                    "rilevato due chilometri di banchina, individuando cedimenti e corrosione "
                    "dei pali; i dati alimentano un modello 3D per pianificare la manutenzione."
                ),
            },
            {
                "title": "Navigazione autonoma in acque torbide",
                "summary": (
                    "Ricerca con un dipartimento universitario sulla fusione di dati sonar e "
                    "inerziali per localizzare piccoli AUV senza GPS in bacini portuali a "
                    "bassa visibilità."
                ),
            },
        ],
        "preferences": {
            "programmes": ["HORIZON"],
            "types_of_action": ["HORIZON-RIA", "HORIZON-IA"],
            "budget_max": 3000000,
            "languages": ["it"],
        },
    },
    {
        "id": "portolano-digitale",
        "name": "Portolano Logistica Digitale S.r.l.",
        "emails": ["progetti@portolano-digitale.example", "direzione@portolano-digitale.example"],
        "country": "IT",
        "city": "Genova",
        "organisation_type": "company",
        "size": "sme",
        "sme": True,
        "description": (
            "PMI di software per la logistica portuale e intermodale. La sua piattaforma "
            "gestisce la prenotazione degli slot per gli autotrasportatori ai varchi, "
            "ottimizza la disposizione dei container nel piazzale e prevede con il machine "
            "learning l'orario di arrivo delle navi e dei treni merci. Si integra con i port "
            "community system e le piattaforme doganali per ridurre code, tempi di sosta ed "
            "emissioni dei mezzi pesanti in area portuale."
        ),
        "keywords": [
            "logistica portuale", "terminal container", "trasporto intermodale",
            "ottimizzazione", "machine learning", "port community system",
            "digitalizzazione del trasporto merci",
        ],
        "past_projects": [
            {
                "title": "Prenotazione degli slot per l'autotrasporto in un terminal container",
                "summary": (
                    "Sistema di appuntamenti per i camion ai varchi di un terminal genovese: "
                    "code ridotte nelle ore di punta e dati di traffico condivisi con il "
                    "gestore del terminal."
                ),
            },
            {
                "title": "Gemello digitale del piazzale container",
                "summary": (
                    "Modello di simulazione del piazzale alimentato dai dati delle gru e dei "
                    "mezzi di movimentazione, usato per provare regole di impilamento e "
                    "ridurre i rimaneggi dei container."
                ),
            },
            {
                "title": "Previsione degli arrivi nave con dati AIS",
                "summary": (
                    "Modelli di machine learning sui dati AIS per stimare l'orario di arrivo "
                    "delle navi e pianificare in anticipo personale e mezzi di banchina."
                ),
            },
        ],
        "preferences": {
            "programmes": ["HORIZON"],
            "types_of_action": ["HORIZON-IA", "HORIZON-RIA"],
            "languages": ["it"],
        },
    },
    {
        "id": "scudo-di-bordo",
        "name": "Scudo di Bordo Cybersecurity S.r.l.",
        "emails": ["info@scudodibordo.example"],
        "country": "IT",
        "city": "Genova",
        "organisation_type": "company",
        "size": "micro",
        "sme": True,
        "description": (
            "Microimpresa specializzata nella sicurezza informatica delle navi e dei sistemi "
            "di automazione di bordo (OT). Offre valutazioni del rischio cyber per armatori e "
            "cantieri, monitoraggio delle intrusioni sulle reti di bordo, test di "
            "penetrazione su sistemi di navigazione e comunicazione satellitare e formazione "
            "degli equipaggi con esercitazioni simulate di attacco."
        ),
        "keywords": [
            "cybersecurity marittima", "sicurezza OT", "rilevamento intrusioni",
            "valutazione del rischio", "formazione equipaggi", "navi connesse",
        ],
        "past_projects": [
            {
                "title": "Monitoraggio delle reti OT su traghetti ro-pax",
                "summary": (
                    "Sonde passive installate su due traghetti per mappare i dispositivi di "
                    "bordo e segnalare traffico anomalo verso la sala macchine e il ponte."
                ),
            },
            {
                "title": "Esercitazioni cyber per gli equipaggi",
                "summary": (
                    "Percorso formativo con scenari simulati di ransomware e falsificazione "
                    "del segnale GNSS per ufficiali di coperta e di macchina."
                ),
            },
        ],
        "preferences": {
            "programmes": ["HORIZON"],
            "types_of_action": ["HORIZON-RIA", "HORIZON-IA"],
            "budget_max": 2000000,
            "languages": ["it"],
        },
    },
    {
        "id": "h2-darsena",
        "name": "H2 Darsena S.r.l.",
        "emails": ["hello@h2darsena.example"],
        "country": "IT",
        "city": "Genova",
        "organisation_type": "company",
        "size": "startup",
        "sme": True,
        "description": (
            "Start-up dell'idrogeno verde per i porti. Progetta microreti portuali con "
            "elettrolizzatori alimentati da fotovoltaico, stoccaggio dell'idrogeno e "
            "stazioni di rifornimento per mezzi di movimentazione, rimorchiatori e "
            "imbarcazioni di servizio a celle a combustibile. Realizza studi di fattibilità "
            "tecnico-economica e analisi di sicurezza per autorità portuali e terminalisti."
        ),
        "keywords": [
            "idrogeno verde", "porti", "celle a combustibile", "elettrolisi",
            "rifornimento di idrogeno", "decarbonizzazione portuale",
        ],
        "past_projects": [
            {
                "title": "Stazione di rifornimento a idrogeno in area portuale",
                "summary": (
                    "Studio di fattibilità e analisi dei rischi per una stazione da 200 kg al "
                    "giorno al servizio di reach stacker e navette a celle a combustibile."
                ),
            },
            {
                "title": "Retrofit a celle a combustibile di un mezzo di movimentazione",
                "summary": (
                    "Prototipo di conversione di un trattore portuale diesel con modulo a "
                    "celle a combustibile e batteria tampone, provato per tre mesi in un "
                    "terminal."
                ),
            },
        ],
        "preferences": {
            "programmes": ["HORIZON"],
            "types_of_action": ["HORIZON-IA", "HORIZON-RIA"],
            "languages": ["it"],
        },
    },
    {
        "id": "terrazze-liguri",
        "name": "Terrazze Liguri Agritech Soc. Coop.",
        "emails": ["cooperativa@terrazzeliguri.example"],
        "country": "IT",
        "city": "Albenga",
        "organisation_type": "company",
        "size": "micro",
        "sme": True,
        "description": (
            "Cooperativa agricola e tecnologica del Ponente ligure. Porta l'agricoltura di "
            "precisione nelle colture terrazzate e in serra (basilico, olivo, vite) con "
            "sensori IoT di umidità del suolo, irrigazione a rateo variabile e previsioni "
            "meteo locali. Sviluppa la tracciabilità digitale della filiera dell'olio e del "
            "basilico e la valorizzazione degli scarti di frantoio come ammendanti."
        ),
        "keywords": [
            "agricoltura di precisione", "agroalimentare", "irrigazione", "sensori IoT",
            "tracciabilità di filiera", "economia circolare", "scarti agricoli",
        ],
        "past_projects": [
            {
                "title": "Irrigazione di precisione nelle serre di basilico",
                "summary": (
                    "Rete di sensori nel suolo e modello di evapotraspirazione che hanno "
                    "ridotto i consumi d'acqua delle serre associate mantenendo la resa."
                ),
            },
            {
                "title": "Tracciabilità digitale dell'olio extravergine",
                "summary": (
                    "Registro condiviso dei lotti dalla raccolta all'imbottigliamento, con "
                    "etichetta consultabile dal consumatore."
                ),
            },
            {
                "title": "Compost dalle sanse di frantoio",
                "summary": (
                    "Prove di compostaggio delle sanse con residui di potatura e analisi "
                    "agronomica del compost sulle colture terrazzate."
                ),
            },
        ],
        "preferences": {
            "programmes": ["HORIZON"],
            "types_of_action": ["HORIZON-IA", "HORIZON-CSA"],
            "budget_max": 1500000,
            "languages": ["it"],
        },
    },
]

# CORDIS funding schemes that are the same kind of action as a work-programme topic type.
_ACTION_OF_SCHEME = {
    "HORIZON-RIA": "HORIZON-RIA",
    "HORIZON-JU-RIA": "HORIZON-RIA",
    "HORIZON-IA": "HORIZON-IA",
    "HORIZON-JU-IA": "HORIZON-IA",
    "HORIZON-CSA": "HORIZON-CSA",
    "HORIZON-JU-CSA": "HORIZON-CSA",
}

_LISTED_STATUS = {
    "open for submission": "open",
    "open": "open",
    "forthcoming": "forthcoming",
    "closed": "closed",
}


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def write_csv_gz(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    # mtime=0 and no file name in the header: the same input gives the same bytes.
    with path.open("wb") as raw, gzip.GzipFile(
        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9
    ) as gz:
        gz.write(buf.getvalue().encode("utf-8"))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def city_of(row: dict[str, str]) -> str:
    nuts = row.get("nutsCode", "")
    city = row.get("city", "").strip()
    # "GENOVA GE" / "Genova Ge": drop the province code; the NUTS-3 region wins when the
    # registered city is outside it (Hitachi Rail STS lists NAPOLI under ITC33 Genova).
    if nuts in LIGURIA_NUTS and city and LIGURIA_NUTS[nuts].upper() not in city.upper():
        if nuts == "ITC33":  # the only region whose capital is also our demo's city
            return "Genova"
    words = [w for w in city.split() if len(w) > 2 or not w.isalpha()]
    return " ".join(w.capitalize() for w in words) or LIGURIA_NUTS.get(nuts, "")


def real_members(orgs: list[dict[str, str]], projects: dict[str, dict[str, str]]) -> list[dict]:
    rows_by_pic: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in orgs:
        rows_by_pic[row["organisationID"]].append(row)
    members = []
    for pic, profile in REAL_PROFILES.items():
        rows = rows_by_pic.get(pic)
        if not rows:
            raise SystemExit(f"PIC {pic} ({profile['name']}) is not in organizations.csv")
        first = rows[0]
        sme = first["SME"].strip().lower() == "true"
        org_type = ORGANISATION_TYPES.get(first["activityType"], "other")
        actions = {"HORIZON-RIA", "HORIZON-IA"}
        for row in rows:
            scheme = projects[row["projectID"]]["fundingScheme"]
            if _ACTION_OF_SCHEME.get(scheme) == "HORIZON-CSA":
                actions.add("HORIZON-CSA")
        if org_type in ("university", "research", "public"):
            actions.add("HORIZON-CSA")
        order = ["HORIZON-RIA", "HORIZON-IA", "HORIZON-CSA"]
        members.append(
            {
                "id": profile["id"],
                "name": profile["name"],
                "emails": [f"eu-projects@{profile['id']}.example"],
                "country": first["country"],
                "city": city_of(first),
                "organisation_type": org_type,
                "size": "sme" if sme else "large",
                "sme": sme,
                "pic": pic,
                "description": profile["description"],
                "keywords": profile["keywords"],
                "preferences": {
                    "programmes": ["HORIZON"],
                    "types_of_action": [a for a in order if a in actions],
                    "languages": ["en"],
                },
            }
        )
    return members


def cordis_subset(source: Path, target: Path, pics: set[str]) -> dict[str, int]:
    org_cols, orgs = read_csv(source / "organizations.csv")
    project_ids = {r["projectID"] for r in orgs if r["organisationID"] in pics}
    proj_cols, projects = read_csv(source / "projects.csv")
    voc_cols, vocs = read_csv(source / "project_euroscivoc.csv")
    target.mkdir(parents=True, exist_ok=True)
    keep_projects = [r for r in projects if r["id"] in project_ids]
    keep_orgs = [r for r in orgs if r["projectID"] in project_ids]
    keep_vocs = [r for r in vocs if r["projectID"] in project_ids]
    write_csv_gz(target / "projects.csv.gz", proj_cols, keep_projects)
    write_csv_gz(target / "organizations.csv.gz", org_cols, keep_orgs)
    write_csv_gz(target / "project_euroscivoc.csv.gz", voc_cols, keep_vocs)
    return {
        "projects": len(keep_projects),
        "organisation rows": len(keep_orgs),
        "organisations": len({r["organisationID"] for r in keep_orgs}),
        "euroscivoc rows": len(keep_vocs),
    }


def listed_status(raw: str) -> str | None:
    text = (raw or "").strip()
    if text.startswith("{"):
        # the second source lists the portal's status object as text: {'id': ..., 'label': ...}
        label = text.split("'label':", 1)[-1].strip(" }'\"")
        text = label
    return _LISTED_STATUS.get(text.lower())


def brussels_deadline(day: str) -> str:
    """The portal's usual deadline hour, 17:00 Brussels time, with that day's UTC offset
    (+01:00 in winter, +02:00 in summer), so it is stored as the right moment in UTC."""
    at = datetime.fromisoformat(f"{day}T17:00:00").replace(tzinfo=ZoneInfo("Europe/Brussels"))
    return at.isoformat()


def call_record(topic: dict) -> dict:
    identifier = topic["topic"].strip()
    deadline = (topic.get("deadline") or "").strip()
    extra: dict = {"source_dataset": topic.get("source")}
    if topic.get("description_short"):
        extra["description_short"] = topic["description_short"]
    return {
        "identifier": identifier,
        "title": topic["title"].strip(),
        "call_identifier": topic.get("callIdentifier") or None,
        "call_title": topic.get("callTitle") or None,
        "programme": "HORIZON",
        "programme_id": HORIZON_PROGRAMME_ID,
        "description": topic.get("description") or topic.get("description_short") or "",
        "description_html": "",
        "conditions": "",
        "destination": None,
        "status": listed_status(topic.get("status", "")),
        "opening_date": None,
        "deadlines": [{"at": brussels_deadline(deadline), "stage": 1}] if deadline else [],
        "type_of_action": " ".join((topic.get("typesOfAction") or "").split()) or None,
        "budget": None,
        "keywords": [],
        "url": TOPIC_URL + identifier.lower(),
        "source": "demo",
        "publication_date": None,
        "extra": extra,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    source = Path(argv[1])
    _, orgs = read_csv(source / "organizations.csv")
    _, project_rows = read_csv(source / "projects.csv")
    projects = {r["id"]: r for r in project_rows}

    members = real_members(orgs, projects) + FICTIONAL_PROFILES
    write_jsonl(HERE / "members.jsonl", members)
    counts = cordis_subset(source, HERE / "cordis", set(REAL_PROFILES))

    with (source / "live_topics_2026_2027.jsonl").open(encoding="utf-8") as fh:
        topics = [json.loads(line) for line in fh if line.strip()]
    calls = sorted((call_record(t) for t in topics), key=lambda c: c["identifier"])
    write_jsonl(HERE / "calls.jsonl", calls)

    print(f"members.jsonl: {len(members)} members ({len(FICTIONAL_PROFILES)} fictional)")
    print("cordis/: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    print(f"calls.jsonl: {len(calls)} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
