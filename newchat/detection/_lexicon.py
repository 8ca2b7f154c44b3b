"""The offline classifier's vocabulary: weighted cue terms per practice area, English and Spanish.

Terms are written normalised (lower case, no accents). A token ending in `*` matches any word that
starts with it; multi-word terms match consecutive words. Longer terms win over the words inside
them ("real estate" is not "estate"). Cue groups score nothing alone; `COMBINATIONS` turns pairs of
groups into evidence ("hurt" + "at work" is workers' comp, not personal injury).
"""

from __future__ import annotations

from newchat._categories import Category

Weighted = dict[int, list[str]]

# fmt: off
LEXICON: dict[Category, Weighted] = {
    "personal_injury": {
        4: [
            "car accident", "car acident", "auto accident", "car crash", "truck accident",
            "motorcycle accident", "bike accident", "bicycle accident", "slip and fall",
            "hit and run", "dog bite", "rear ended", "rear end*", "t boned", "fender bender",
            "hit by a car", "hit by a truck", "hit by car", "sideswip*", "whiplash",
            "accidente de carro", "accidente de auto", "accidente de coche",
            "accidente de transito", "choque", "chocaron", "choco", "me atropell*", "atropell*",
            "wrongful death", "premises liability",
        ],
        3: [
            "crash*", "wreck*", "accident", "accidents", "accidente", "totaled", "other driver",
            "other drivers", "the driver", "uber", "lyft", "passenger", "pedestrian", "semi truck",
            "18 wheeler", "bitten", "dog attack*", "attacked my", "slipped", "tripped", "fell down",
            "fell at", "at fault", "insurance adjuster", "adjuster", "hit my car", "hit me",
            "ran a red", "el otro conductor", "el otro chofer", "se paso el alto", "mordio",
            "mordida", "smashed into", "slammed into", "crashed into", "ran into me", "backed into",
            "hit from behind", "got hit", "car got hit", "drunk driver", "hit my", "struck by",
            "collision", "rollover", "airbag*", "pothole", "trampoline", "scooter", "bus accident",
            "boat accident", "atv", "golf cart", "rideshare", "taxi", "pit bull", "mauled",
            "dog bit", "bit me", "bit my", "fell on me", "collapsed", "escalator", "elevator",
            "defective product", "product recall", "electrocuted", "pain and suffering",
            "brain injury", "tbi", "spinal", "paralyzed", "chiropractor", "physical therapy",
            "aseguranza", "killed by", "road rage", "crosswalk", "tractor trailer", "big rig",
            "parking lot", "burn injury", "burned by", "fell in", "fell off my", "dog", "hit us",
            "pulled out in front", "ran a stop sign", "stop sign", "red light", "autopista",
            "carretera", "ambulancia", "daycare", "van", "suv", "vehicle", "motorcycle", "my car",
            "the car", "car", "truck", "driver", "lowball*", "insurance company", "airbag",
            "slammed on", "bicycle", "bike", "grab bars", "got hurt", "was hurt", "hurt at",
            "fell through", "injured at", "clipped by", "pool party", "me cai en", "me cai de",
            "wet floor", "piso mojado", "defectuoso", "producto defectuoso", "juguete defectuoso",
            "other guy", "other guys", "broken leg", "my leg is broken", "se quemo con",
            "me resbale", "me tropece", "me accidente", "moto", "motocicleta", "se me atraveso",
            "se me cruzo", "atropey*", "pitbull", "got bit", "bit by", "me mordio",
        ],
        2: [
            "police report", "reporte de policia", "reporte policial", "accident report",
        ],
        1: [
            "injured", "injury", "injuries", "hurt", "broke my", "broken", "concussion",
            "hospital bills", "lesion*", "herido", "lastime", "me cai", "seguro",
        ],
    },
    "workers_comp": {
        8: [
            "workers comp", "workers compensation", "worker comp", "worker compensation",
            "workmans comp", "workman comp", "workmens comp", "work comp", "workers comp*",
            "comp claim", "comp doctor", "comp checks", "comp insurance", "compensacion laboral",
            "compensacion al trabajador", "compensacion de trabajador*", "accidente de trabajo",
            "seguro de compensacion", "compensacion",
            "accidente laboral", "lastime en el trabajo", "accidente en mi trabajo",
            "accidente en el trabajo", "me accidente en el trabajo", "me accidente trabajando",
            "me accidente en la chamba", "work injury", "workplace injury",
            "job injury", "warehouse injury", "injured at work", "hurt at work",
            "injured on the job", "hurt on the job", "on the job injury", "light duty",
            "return to work", "osha", "carpal tunnel", "comp adjuster", "comp case", "comp lawyer",
            "comp attorney", "filed a workers comp", "workers comp claim",
        ],
        2: [
            "job site", "jobsite", "andamio", "forklift", "company doctor", "crushed", "machine",
            "conveyor", "scaffold*", "techo", "en la obra", "trabajando",
        ],
    },
    "medical_malpractice": {
        5: [
            "malpractice", "malpractise", "medical negligence", "negligencia medica",
            "chiropractor broke", "chiropractor hurt", "chiropractor injured", "inyecto mal",
            "me inyecto mal", "la enfermera me",
            "error medico", "misdiagnos*", "failed to diagnose", "wrong diagnosis",
            "surgical error", "botched", "birth injury", "wrong medication", "wrong prescription",
            "hospital negligence", "anesthesia error", "sponge inside", "left a sponge",
            "wrong leg", "wrong arm", "overdose", "surgery went wrong", "hospital mistake",
            "sent me home", "operated on the wrong", "wrong side", "wrong site", "nursing home",
            "asilo de ancianos", "casa de ancianos", "hogar de ancianos", "residencia de ancianos",
            "casa de reposo", "en el asilo", "en un asilo", "del asilo",
            "bed sores", "bedsores", "neglect", "lasik", "ignored my symptoms", "delayed diagnosis",
            "late diagnosis", "missed diagnosis", "misread", "se equivoco", "medical error",
            "cerebral palsy", "erb s palsy", "c section", "epidural", "discharged",
            "emergency room", "urgent care", "complications", "pharmacist", "went bad", "stage 4",
            "stage four", "xray", "radiologist",
        ],
        1: [
            "surgery",  # also what an injury caused elsewhere needs ("the surgery cost $32,000")
        ],
        3: [
            "surgeon", "dentist", "nurse", "pharmacy", "prescription", "anesthesia",
            "amputat*", "doctor", "doctors", "cirugia", "operacion", "medico", "diagnos*",
            "infection", "chart", "allergic", "during delivery", "medication", "symptoms", "biopsy",
            "x ray", "mri", "cancer", "obgyn", "delivery", "wrong blood", "perforat*",
            "test results", "misdiagnosed", "por culpa del doctor", "nacio con",
        ],
        2: [
            "hospital", "er", "treatment", "clinic",
        ],
    },
    "family": {
        5: [
            "divorc*", "devorc*", "custody", "custodia", "child support", "child suport", "alimony",
            "spousal support", "visitation", "paternity", "prenup*", "adopt*", "restraining order",
            "manutencion", "pension alimenticia", "grandparents rights", "separation from",
            "separar", "separarme", "separacion", "legal separation", "prueba de paternidad",
            "paternidad",
            "legal separation", "custody order", "full custody", "parenting plan", "parenting time",
            "protective order", "orden de proteccion", "baby daddy", "baby mama", "baby momma",
            "marriage", "annul*", "cheating", "co parenting", "coparenting", "moved with my", "cps",
            "child protective", "foster", "emancipat*", "name change", "dejar ver", "me deja ver",
            "no me deja ver", "mi ex", "separarme", "my spouse", "married",
        ],
        2: [
            "my ex", "ex wife", "ex husband", "ex boyfriend", "ex girlfriend", "stepdaughter",
            "stepson", "my kids", "the kids", "my children", "mis hijos", "grandson",
            "granddaughter", "father of my child", "mother of my son", "father of my son", "won t let me see", "mother of my child", "co parent*",
            "see my kids", "took my kids", "took the kids", "wife wants", "husband left",
            "baby is not his", "support", "mediation", "domestic", "want out",
        ],
        1: [
            "husband", "wife", "esposo", "esposa", "separat*", "my daughter", "my son",
        ],
    },
    "criminal": {
        4: [
            "arrested", "arrest", "arrestaron", "arresto", "charged with", "charges", "felony",
            "misdemeanor", "warrant", "shoplift*", "jail", "carcel", "prison", "bail", "probation",
            "parole", "criminal", "expunge*", "record sealed", "possession", "drug charges",
            "search warrant", "assault", "theft", "robbery", "burglary", "detenido",
            "gun", "firearm", "weapon", "fraud", "vandalism", "trespass*",
            "indicted", "indictment", "grand jury", "plea", "plea deal", "prosecutor", "sentenc*",
            "convict*", "juvenile", "booked", "mugshot", "stolen", "murder", "homicide",
            "manslaughter", "stalking", "embezzl*", "money laundering", "fbi", "dea", "subpoena",
            "bench warrant", "failure to appear", "fianza", "delito", "acusado", "preso",
            "se llevo", "picked up by", "speeding", "suspended license", "driving on a suspended",
            "criminal record", "background check", "vandal*", "stealing a", "crime",
            "reckless driving", "locked up", "caught with", "drugs", "drug", "stole", "steal",
            "on my record", "my record", "record cleared", "police called", "detained",
            "lawyer for court", "arraign*", "investigated by the police", "investigated by police",
            "robo", "robar", "robe", "hurto", "me acusaron", "me acusan", "acusaron",
            "me detuvieron", "detuvieron", "orden de arresto", "libertad condicional",
            "antecedentes penales", "marihuana", "drogas", "me agarraron con", "agresion",
            "fiscal", "domestic violence charge", "charged with domestic", "dv charge",
            "arrested for domestic", "arrested for dv",
        ],
        2: [
            "accused of", "stealing", "court date", "public defender", "defense attorney",
            "defense lawyer", "first offense", "weed", "marijuana", "ticket", "cargos", "police",
            "cops", "policia",
        ],
    },
    "dui": {
        # A DUI charge comes with an arrest, a night in jail and bail: its own terms outweigh
        # those criminal ones ("second DUI, arrested last night, bail was $2,000").
        12: [
            "dui", "dwi", "owi", "ovi", "drunk driving", "drunk driver arrest",
            "high while driving", "driving high", "drugged driving", "manejando drogado",
            "driving under the influence", "drinking and driving", "breathalyzer", "breathalizer",
            "breath test", "field sobriety", "sobriety test", "blood alcohol", "blew a",
            "blew over", "over the limit", "manejar borracho", "manejando borracho",
            "manejando tomado", "manejar tomado", "conducir ebrio", "conduciendo ebrio",
            "ebriedad", "0.08", ".08", "ignition interlock", "interlock", "dmv hearing",
            "sople", "alcoholimetro", "soplar", "sople alto",
            "driving impaired", "impaired driving",
        ],
        8: [
            "after drinking", "drunk", "intoxicated", "borracho", "tomado", "bac", "drinking",
            "alcohol",
        ],
        3: [
            "pulled over",
        ],
    },
    "immigration": {
        # Its own words outweigh the family ones that come with a spouse's case ("married 2
        # years, want to apply for her green card").
        8: [
            "immigration", "inmigracion", "green card", "deport*", "asylum", "asilo", "citizenship",
            "ciudadania", "naturaliz*", "daca", "visa", "visas", "h1b", "h 1b", "uscis",
            "undocumented", "indocumentad*", "work permit", "permiso de trabajo", "ice picked",
            "ice took", "ice arrested", "ice raid", "by ice", "picked up by ice",
        ],
        5: [
            "citizen", "overstayed",
            "overstay", "residencia", "papeles", "migra", "ice detained", "detained by ice",
            "ice agents", "fiance visa", "permanent resident", "tps", "legal status", "status",
            "pedir a mi", "pedirle a mi", "peticion familiar", "arreglar papeles",
            "arreglar mis papeles", "pedir a mis", "ciudadana", "ciudadano", "visa de trabajo",
            "h 2a", "h2a", "h 2b", "h2b", "quedarme legalmente", "quedarme en el pais",
            "brought here", "dreamer", "stay in the country", "come to the us", "come from",
            "petition for", "petition my", "i 130", "i 485", "k1", "consulate", "embassy", "border",
            "crossed", "illegal*", "sin papeles", "turista", "tourist", "residente", "ciudadano",
            "pasaporte", "passport", "student visa", "u visa", "vawa", "removal proceedings",
            "immigration court", "deportado", "detention center", "se vencio", "vencio", "legalize",
            "arreglar papeles", "sponsor*", "patrocinar", "running out", "fue deportado",
        ],
    },
    "bankruptcy": {
        5: [
            "bankrupt*", "bankrupc*", "bancarrota", "quiebra", "chapter 7", "chapter 13",
            "chapter 11", "debt collector*", "collection agency", "garnish*", "repossess*",
            "repo", "repo man", "repoed", "me quitaron el carro por no pagar", "hipoteca",
            "quitar la casa", "capitulo 7", "capitulo 13", "mortgage",
            "reposes*", "foreclos*", "deudas", "deuda", "cobradores", "credit card debt",
            "tarjetas de credito", "out of debt", "too much debt", "creditor", "creditors",
            "payday loan*", "student loans", "missed payments", "missed my payments",
            "take my house", "lose my house", "losing my house", "embarg*", "bank levy", "levy",
            "frozen bank account", "tax debt", "back taxes", "loan modification", "sheriff sale",
            "money problems", "insolven*", "collections", "in collections", "collectors",
            "collector", "irs", "can t keep up", "tarjetas", "credit card",
        ],
        3: [
            "debt", "debts", "owe so much", "credit cards", "medical bills", "behind on",
            "can t pay my bills", "no puedo pagar", "loans", "loan", "bills", "owe", "cant pay",
            "can t pay", "sueldo", "mortgage", "bank", "credit",
        ],
    },
    "employment": {
        5: [
            "fired", "wrongful termination", "wrongfully terminated", "terminated", "let go",
            "no me pagaron", "no me pagan", "ultimo cheque", "last paycheck", "final paycheck",
            "me debe", "me deben", "salario", "sueldo", "back pay", "owes me", "no me paga",
            "stole my wages", "unpaid", "accommodat*", "accomodat*", "reasonable accommodation",
            "laid off", "despidieron", "despedido", "me corrieron", "harass*", "acoso",
            "discriminat*", "discriminacion", "hostile work environment", "retaliat*",
            "unpaid wages", "overtime", "horas extras", "horas extra", "minimum wage", "wage theft",
            "owed wages",
            "fmla", "eeoc", "whistleblower", "demoted", "severance", "non compete", "no me pagan",
            "not paying me", "hasn t paid me", "doesn t pay me", "owes me", "of wages",
            "racist comments", "cut my hours", "accommodation*", "written up", "write up",
            "misclassif*", "classifies me", "independent contractor", "1099", "final paycheck",
            "last paycheck", "pay me for", "won t pay me", "lunch break", "meal break",
            "rest break", "sick leave", "maternity leave", "paternity leave", "equal pay",
            "forced to resign", "forced to quit", "constructive discharge", "layoff",
            "unemployment", "desempleo", "trata mal", "me grita", "workplace", "tips", "noncompete",
            "promotion", "for being gay", "because i m pregnant", "because of my race",
            "because of my age", "because of my religion", "union", "last check", "off the clock",
            "breaks", "a raise", "medical leave", "injustamente", "pay my last",
            "not getting paid", "getting paid for", "paid for all my hours",
        ],
        2: [
            "boss", "supervisor", "manager", "coworker", "co worker", "hr", "employer", "my job",
            "jefe", "paycheck", "wages", "pregnant", "embarazada", "full time", "part time",
            "at work", "job", "trabajo", "company",
        ],
    },
    "estate": {
        8: [
            "guardianship", "conservator*", "heirs", "heir", "probate court", "in his name",
            "albacea", "executor", "executrix", "testamentaria",
            "in her name", "trust", "leave my house to", "late mother", "late father",
            "late husband", "late wife", "late mom", "late dad", "his affairs", "her affairs",
            "dementia", "quedar con todo", "update my will", "elderly", "life insurance",
            "will and", "need a will", "make a will", "living will", "wills", "estate plan*",
        ],
        5: [
            "probate", "living trust", "a trust", "trust for", "inheritance", "inherit*",
            "herencia", "testamento", "executor", "executrix", "beneficiar*", "estate planning",
            "power of attorney", "poder notarial", "fideicomiso", "sucesion", "no will", "a will",
            "my will", "the will", "his will", "her will", "grandmothers will", "grandpas will",
            "grandfathers will", "last will", "without a will", "estate", "estate attorney",
            "left everything",
        ],
        2: [
            "passed away", "died", "fallecio", "murio", "deceased", "caregiver", "passed",
            "funeral", "dads", "moms",
        ],
    },
    "real_estate": {
        5: [
            "landlord", "tenant", "evict*", "desalojar", "desalojo", "lease", "security deposit",
            "terreno", "escrituras", "titulo de propiedad", "vendedor", "lote", "contratista",
            "property line", "hoa", "homeowners association", "easement", "casero", "deposito",
            "real estate", "title issue", "closing", "rent", "renta", "quiet title", "deed",
            "buying a house", "bought the house", "bought a house", "selling my house", "seller",
            "mold", "contractor", "remodel", "zoning", "roommate", "condo", "water damage", "hid",
            "disclose", "didn t disclose", "raise the rent", "rent increase", "squatter*",
            "move out", "notice to vacate", "30 day notice", "section 8", "housing", "timeshare",
            "realtor", "home inspection", "escrow", "earnest money", "builder",
            "construction defect", "foundation", "roof leak", "apartamento", "sacar de mi",
            "neighbor s tree", "tree fell", "fence", "leaking", "repairs", "landlady",
            "property manager", "rental", "duplex", "house we bought", "inquilino", "arrendamiento",
        ],
        2: [
            "apartment", "my house", "property", "home", "casa", "neighbor", "neighbors", "vecino",
        ],
    },
    "disability": {
        # Federal disability benefits are their own practice: they outweigh the injury at work
        # that caused the disability years ago ("comp is closed, now applying for SSDI").
        20: [
            "social security disability", "ssdi", "seguro social por incapacidad",
            "seguro social por discapacidad", "applying for disability",
        ],
        6: [
            "disability", "disabilty", "disabled", "ssdi", "ssi", "social security", "discapacidad",
            "incapacidad", "seguro social", "disability benefits", "long term disability",
            "disability claim", "va disability", "disability rating", "can t work anymore",
            "cant work anymore", "no puedo trabajar", "no longer work", "unable to work",
            "can no longer work", "multiple sclerosis", "ptsd", "disability company", "ssdi",
            "approved for ssi", "aplicar para discapacidad", "disabled veteran",
            "social security office",
        ],
        3: [
            "can t work because", "cant work because", "my condition", "mi condicion", "my health",
            "bipolar", "autism", "ms", "lupus", "fibromyalgia", "heart problems", "benefits",
            "diabetes", "cancer treatment", "chronic pain", "cant work", "can t work", "seizures",
            "depression", "anxiety", "schizophrenia", "heart condition", "back problems",
        ],
    },
    "general": {},
}

CUE_GROUPS: dict[str, list[str]] = {
    "injury": [
        "hurt", "injured", "injury", "injuries", "broke", "burned", "cut my", "fell", "lastime",
        "me cai", "herido", "accidente", "accident", "lifting", "quebre", "rompi", "tore",
        "fracture*", "box fell", "fell on my", "crushed", "cai", "slipped", "tripped", "burn",
        "sprain*", "strain*", "torn", "ladder", "roof", "techo", "cortaron", "me corte", "dedos",
        "enferm*", "pulmones", "lungs", "breathing problems", "chemicals", "quimicos", "polvo",
        "dust", "fumes", "exposed to", "exposure", "asbestos", "toxic",
        "me queme", "queme", "me resbale", "resbale", "golpe*", "lesion*", "me lastime",
    ],
    "work": [
        "at work", "at my job", "on the job", "while working", "where i work", "warehouse",
        "factory", "construction", "employer", "boss", "en el trabajo", "mi trabajo", "job site",
        "jobsite", "the plant", "shift", "coworker", "my shift", "company truck", "for work",
        "construccion", "trabajo en", "trabajando", "obra", "at the plant", "my work", "patient",
        "lifting a patient", "store i work", "restaurant where", "fabrica", "maquina",
        "donde trabajo", "restaurante donde", "en mi trabajo", "la compania", "mi jefe",
        "del trabajo", "i work at", "plant i work", "where i work at",
        "mi patron", "el patron",
    ],
    "medical": [
        "doctor", "surgeon", "hospital", "nurse", "er", "dentist", "medico", "surgery", "cirugia",
        "operacion", "nursing home", "clinic", "emergency room", "er", "pharmacy", "xray", "x ray",
        "radiologist",
    ],
    "error": [
        "mistake", "error", "wrong", "negligen*", "failed to", "waited too long", "went wrong",
        "damaged", "left", "nicked", "infection", "allergic", "too early", "ignored", "neglect",
        "discharged", "misread", "missed the", "missed a", "missed it", "missed my",
        "didn t catch",
    ],
    "employment_loss": [
        "fired", "terminated", "let go", "despidieron", "corrieron",
    ],
    "death": [
        "died", "death", "passed away", "passed", "killed", "fallecio", "murio",
    ],
    "estate_asset": [
        "house", "home", "property", "land", "bank account", "money", "belongings", "his name",
        "her name", "casa", "everything",
    ],
}
# fmt: on

COMBINATIONS: list[tuple[Category, tuple[str, str], int]] = [
    ("workers_comp", ("injury", "work"), 9),
    ("medical_malpractice", ("medical", "error"), 6),
    ("medical_malpractice", ("medical", "death"), 4),
    ("estate", ("death", "estate_asset"), 5),
]
ABSORBED: dict[tuple[str, str], tuple[Category, Category]] = {
    ("injury", "work"): ("personal_injury", "workers_comp"),
}
"""When both groups are present, the first category's evidence counts for the second: every
injury word in "me resbalé en el trabajo, me lastimé la rodilla" says workers' comp, not a
personal injury claim."""

PROTECTED_WORDS = frozenset(
    {
        "charged",
        "charges",
        "caring",
        "related",
        "stated",
        "waited",
        "wanted",
        "worked",
        "hired",
        "tired",
        "wired",
        "coming",
        "checks",
        "school",
        "driver",
        "drivers",
        "driving",
        "trusted",
        "willing",
        "rented",
        "stealing",
        "sealed",
        "parents",
        "parent",
        "current",
        "separate",
        "letter",
        "better",
        "status",
        "states",
        "happen",
        "happened",
        "pulled",
        "talking",
        "walking",
        "calling",
        "called",
        "asking",
        "saying",
        "making",
        "taking",
        "having",
        "getting",
        "living",
        "leaving",
        "giving",
        "moving",
        "paying",
        "trying",
        "needed",
        "looking",
        "thinking",
        "someone",
        "something",
        "everything",
        "because",
        "anymore",
        "father",
        "mother",
        "brother",
        "sister",
        "months",
        "through",
        "totaled",
    }
)
"""Common words never 'corrected' into a lexicon word by the spelling-tolerant matcher."""
