"""Sample documents the project writes itself, so a fresh install answers real questions at once:
a multi-page PDF of design criteria, a Markdown specification section, an HTML submittal procedure,
and an evaluation file of questions with reference answers and the document that holds each."""

import json
from pathlib import Path

from fpdf import FPDF

DESIGN_CRITERIA_TITLE = "Riverside Pumping Station - Structural Design Criteria (Rev. C)"

# One entry per PDF page: (heading, paragraphs). Figures are what a reviewer would look up.
DESIGN_CRITERIA_PAGES: list[tuple[str, list[str]]] = [
    (
        "1. Scope and Governing Codes",
        [
            "These criteria govern the structural design of the Riverside Pumping Station, including the wet well, "
            "the pump room superstructure, the electrical building and the surge tank foundation.",
            "The governing building code is the 2021 International Building Code (IBC) as adopted by the State. "
            "Loads are determined in accordance with ASCE 7-16, Minimum Design Loads and Associated Criteria for "
            "Buildings and Other Structures. Concrete design follows ACI 318-19 and ACI 350-06 for environmental "
            "engineering concrete structures. Structural steel design follows AISC 360-16.",
            "Where criteria conflict, the more stringent requirement governs. Deviations require written approval "
            "of the Engineer of Record.",
        ],
    ),
    (
        "2. Risk Category and Design Loads",
        [
            "The pumping station is assigned Risk Category IV because it is an essential water facility required "
            "to maintain pressure for fire suppression.",
            "Roof live load is 20 psf. Floor live load in the pump room is 300 psf or the actual equipment weight, "
            "whichever is greater. Electrical room floor live load is 250 psf.",
            "Ground snow load is 25 psf with a snow exposure factor of 1.0 and a thermal factor of 1.1. The snow "
            "importance factor is 1.20.",
        ],
    ),
    (
        "3. Wind and Seismic Design",
        [
            "The basic design wind speed is 120 mph (3-second gust) for Risk Category IV, with Exposure Category C. "
            "Components and cladding are designed for the same wind speed.",
            "Seismic design uses Site Class D based on the geotechnical report. The mapped spectral accelerations "
            "are Ss = 0.45 g and S1 = 0.16 g. The seismic importance factor Ie is 1.50 and the Seismic Design "
            "Category is D.",
            "The lateral force resisting system of the superstructure is special reinforced masonry shear walls "
            "with a response modification coefficient R of 5.0.",
        ],
    ),
    (
        "4. Concrete and Reinforcement",
        [
            "Liquid-containing structures use concrete with a minimum 28-day compressive strength f'c of 4,500 psi "
            "and a maximum water-cementitious materials ratio of 0.42. Other structural concrete uses f'c = 4,000 psi.",
            "Reinforcing steel is ASTM A615 Grade 60. Minimum concrete cover is 2 inches for surfaces in contact "
            "with liquid or earth and 3 inches for concrete cast against earth.",
            "Crack control for liquid-containing structures follows ACI 350 with an environmental durability factor "
            "Sd applied to the required strength.",
        ],
    ),
    (
        "5. Foundations and Buoyancy",
        [
            "The allowable bearing pressure for spread footings is 3,000 psf per the geotechnical report, with a "
            "one-third increase permitted for wind and seismic load combinations.",
            "The design groundwater elevation is 412.0 ft. Structures below groundwater are checked for flotation "
            "with the wet well empty; the minimum factor of safety against buoyancy is 1.25, counting only the "
            "weight of the structure and the soil directly above the footing extensions.",
            "Frost depth is 42 inches; exterior footings bear at least 48 inches below finished grade.",
        ],
    ),
    (
        "6. Steel, Masonry and Deflection Limits",
        [
            "Wide-flange shapes are ASTM A992 (Fy = 50 ksi). Hollow structural sections are ASTM A500 Grade C. "
            "Anchor rods are ASTM F1554 Grade 36 unless noted otherwise.",
            "Concrete masonry units are ASTM C90 with a specified compressive strength f'm of 2,500 psi. Grout "
            "fills all cells of reinforced masonry below grade.",
            "Deflection of roof members is limited to L/240 under live load and L/180 under total load. Crane "
            "runway girders are limited to L/600 under the crane's vertical load.",
        ],
    ),
]

CONCRETE_SPEC = """# Section 03 30 00 - Cast-in-Place Concrete

## Part 1 - General

### 1.1 Summary
This section covers cast-in-place concrete for the Riverside Pumping Station, including formwork,
reinforcement, placement, finishing and curing.

### 1.2 Submittals
Submit concrete mix designs for each class of concrete at least 21 days before the first placement.
Mix designs include trial batch results or field strength records per ACI 301.

## Part 2 - Products

### 2.1 Concrete Mixes
- Class A (liquid-containing structures): f'c 4,500 psi at 28 days, w/cm 0.42 maximum, air content 6 percent plus or minus 1.5 percent.
- Class B (general structural): f'c 4,000 psi at 28 days, w/cm 0.45 maximum.
- Slump: 4 inches plus or minus 1 inch before adding high-range water reducer; 8 inches maximum after.
- Maximum coarse aggregate size: 1 inch.

### 2.2 Waterstops
PVC waterstops, 6 inches wide and 3/8 inch thick, ribbed with a center bulb, at every construction joint
in liquid-containing structures.

## Part 3 - Execution

### 3.1 Placement
Place concrete within 90 minutes of batching. Do not place concrete when the ambient temperature is below
40 degrees F unless cold-weather protection per ACI 306 is in place.

### 3.2 Curing
Keep concrete continuously moist for at least 7 days. Liquid-containing structures are wet cured for
14 days; curing compounds are not permitted on surfaces that will receive coatings.

### 3.3 Leakage Testing
Fill liquid-containing structures to the maximum water level and hold for 3 days before testing. The
allowable leakage is 0.05 percent of the contained volume in 24 hours, per ACI 350.1.
"""

SUBMITTALS_HTML = """<!doctype html>
<html><head><title>Section 01 33 00 - Submittal Procedures</title></head>
<body>
<h1>Section 01 33 00 - Submittal Procedures</h1>
<h2>1.1 Review Time</h2>
<p>Allow 14 calendar days for the Engineer's review of each submittal, and 21 days where the submittal is
coordinated with other trades. Resubmittals are reviewed within the same periods.</p>
<h2>1.2 Shop Drawings</h2>
<p>Shop drawings bear the Contractor's review stamp and identify each deviation from the Contract Documents
in a cover letter. Drawings are submitted as searchable PDF files, one file per submittal.</p>
<h2>1.3 Action Codes</h2>
<p>Code A: no exceptions taken. Code B: make corrections noted, no resubmittal required. Code C: revise and
resubmit. Code D: rejected.</p>
</body></html>
"""

# (question, reference, source, page, section): PDF answers by page, Markdown and HTML ones by section.
EVAL_QUESTIONS = [
    ("What is the basic design wind speed?", "The basic design wind speed is 120 mph, 3-second gust, Exposure C.", "design-criteria.pdf", 3, ""),
    ("Which risk category is the pumping station assigned?", "Risk Category IV, as an essential water facility.", "design-criteria.pdf", 2, ""),
    ("What is the allowable bearing pressure for spread footings?", "3,000 psf, with a one-third increase for wind and seismic combinations.", "design-criteria.pdf", 5, ""),
    ("What minimum factor of safety against buoyancy is required?", "A factor of safety of 1.25 against flotation with the wet well empty.", "design-criteria.pdf", 5, ""),
    ("What concrete strength is required for liquid-containing structures?", "f'c of 4,500 psi at 28 days with a maximum w/cm of 0.42.", "design-criteria.pdf", 4, ""),
    ("How long must liquid-containing structures be wet cured?", "They are wet cured for 14 days.", "concrete-spec.md", 0, "3.2 Curing"),
    ("What is the allowable leakage in the leakage test?", "0.05 percent of the contained volume in 24 hours, per ACI 350.1.", "concrete-spec.md", 0, "3.3 Leakage Testing"),
    ("How many days does the Engineer have to review a submittal?", "14 calendar days, or 21 days when coordinated with other trades.", "submittal-procedures.html", 0, "1.1 Review Time"),
    ("What does action code C mean on a submittal?", "Revise and resubmit.", "submittal-procedures.html", 0, "1.3 Action Codes"),
    ("What is the seismic importance factor?", "The seismic importance factor Ie is 1.50.", "design-criteria.pdf", 3, ""),
    ("What is the rated capacity of the station's emergency generator?", "The documents do not say.", "", 0, ""),
]


def write_design_criteria(path: Path) -> None:
    pdf = FPDF(format="letter")
    pdf.set_auto_page_break(auto=False)
    for heading, paragraphs in DESIGN_CRITERIA_PAGES:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 10)
        pdf.cell(0, 8, DESIGN_CRITERIA_TITLE, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "B", 14)
        pdf.cell(0, 12, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
        pdf.set_y(-20)
        pdf.set_font("Helvetica", size=9)
        pdf.cell(0, 8, f"Page {pdf.page_no()} of {len(DESIGN_CRITERIA_PAGES)}", align="C")
    pdf.output(str(path))


def write_samples(folder: Path) -> list[Path]:
    """Write the sample documents and `eval.jsonl` into `folder`; returns the documents' paths."""
    folder.mkdir(parents=True, exist_ok=True)
    documents = [folder / "design-criteria.pdf", folder / "concrete-spec.md", folder / "submittal-procedures.html"]
    write_design_criteria(documents[0])
    documents[1].write_text(CONCRETE_SPEC, encoding="utf-8")
    documents[2].write_text(SUBMITTALS_HTML, encoding="utf-8")
    with (folder / "eval.jsonl").open("w", encoding="utf-8") as out:
        for question, reference, source, page, section in EVAL_QUESTIONS:
            row = {"question": question, "reference": reference}
            if source:
                row |= {"source": source, "page": page} if page else {"source": source, "section": section}
            out.write(json.dumps(row) + "\n")
    return documents
