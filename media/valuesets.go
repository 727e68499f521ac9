package media

import (
	"slices"
	"strings"
	"unicode"
)

// Code systems used by the value sets in this package.
const (
	// SNOMEDSystem is the FHIR URI of SNOMED CT.
	SNOMEDSystem = "http://snomed.info/sct"
	// ViewSystem is the code system of [Views]. No SNOMED CT concept set
	// covers clinical-photography views (R4's media-view value set is an
	// example binding of radiographic projections), so the views are coded
	// in this package's own system, which R4 permits for an example binding.
	ViewSystem = "https://clinicpro.co.nz/fhir/CodeSystem/clinical-photo-view"
	// MediaTypeSystem is the R4 code system of Media.type.
	MediaTypeSystem = "http://terminology.hl7.org/CodeSystem/media-type"
	// LOINCSystem is the FHIR URI of LOINC.
	LOINCSystem = "http://loinc.org"
	// NHISystem is the identifier system of New Zealand's National Health Index.
	NHISystem = "https://standards.digital.health.nz/ns/nhi-id"
	// LateralityAttribute is the SNOMED CT attribute 272741003 |Laterality|
	// used to refine a body site in a post-coordinated expression.
	LateralityAttribute = "272741003"
)

// Region groups body sites for a picker.
type Region string

// Regions of the body, in head-to-toe order.
const (
	RegionHeadNeck  Region = "Head and neck"
	RegionTrunk     Region = "Trunk"
	RegionUpperLimb Region = "Upper limb"
	RegionLowerLimb Region = "Lower limb"
	RegionGenital   Region = "Genital and perianal"
)

// BodySite is one entry of the body-site value set: a SNOMED CT body
// structure a GP commonly photographs.
type BodySite struct {
	// Code is the SNOMED CT concept id.
	Code string
	// Name is the short human name used in pickers and titles ("Forearm").
	Name string
	// Display is the SNOMED CT term written to Coding.display.
	Display string
	// Region groups the site for a picker.
	Region Region
	// Synonyms are extra words the text search matches ("arm", "wart").
	Synonyms []string
	// Paired is true for sites that exist on both sides of the body, where
	// a laterality is expected.
	Paired bool
	// Sensitive marks intimate sites (genital, perianal, breast). Their
	// generated titles leave the site out, because Medtech's Inbox lists an
	// item by its title where other staff can read it.
	Sensitive bool
}

// Laterality is a SNOMED CT side qualifier for a body site.
type Laterality struct {
	// Code is the SNOMED CT qualifier value.
	Code string
	// Name is the human name ("Left").
	Name string
	// Display is the SNOMED CT term.
	Display string
}

// View is how a photo was framed, coded in [ViewSystem].
type View struct {
	// Code is the code in [ViewSystem] ("close-up").
	Code string
	// Name is the human name used in pickers and titles.
	Name string
	// Definition says when to choose it.
	Definition string
	// Synonyms are extra words the text search matches.
	Synonyms []string
}

// SNOMED CT laterality codes accepted in [Metadata.Laterality].
const (
	LateralityLeft      = "7771000"
	LateralityRight     = "24028007"
	LateralityBilateral = "51440002"
	LateralityMidline   = "399488007"
)

// The value-set tables. They are never modified: every exported accessor
// returns copies, so callers cannot change what other callers see.
var (
	lateralities = [...]Laterality{
		{LateralityLeft, "Left", "Left"},
		{LateralityRight, "Right", "Right"},
		{LateralityBilateral, "Bilateral", "Right and left"},
		{LateralityMidline, "Midline", "Midline"},
	}

	views = [...]View{
		{"overview", "Overview", "The whole region, so the site can be located on the body", []string{"regional", "orientation", "wide"}},
		{"close-up", "Close-up", "The lesion or wound filling most of the frame", []string{"closeup", "detail", "macro"}},
		{"close-up-scale", "Close-up with scale", "Close-up with a ruler or measuring scale in frame", []string{"ruler", "measure", "size"}},
		{"dermoscopic", "Dermoscopic", "Taken through a dermatoscope", []string{"dermoscopy", "dermatoscope", "epiluminescence"}},
		{"before", "Before treatment", "Baseline before a procedure or treatment", []string{"baseline", "pre"}},
		{"after", "After treatment", "After a procedure or treatment", []string{"post", "result"}},
		{"follow-up", "Follow-up", "Monitoring change over time", []string{"progress", "review", "monitoring"}},
		{"anterior", "Anterior", "From the front", []string{"front"}},
		{"posterior", "Posterior", "From behind", []string{"back", "rear"}},
		{"lateral", "Lateral", "From the side", []string{"side", "profile"}},
		{"oblique", "Oblique", "At an angle between front and side", []string{"angled"}},
		{"total-body", "Total body", "Whole-body photography for mole mapping", []string{"mole mapping", "full body"}},
	}

	// bodySites: SNOMED CT codes checked against DICOM PS3.16 (CID 4029
	// Dermatology Anatomic Site and the Body Part Examined mapping) and
	// published FHIR body-site value sets. DICOM's dermatology convention of
	// "skin of" concepts is followed where a region concept is not
	// available.
	bodySites = [...]BodySite{
		// Head and neck.
		{Code: "41695006", Name: "Scalp", Display: "Scalp structure", Region: RegionHeadNeck, Synonyms: []string{"head", "hair"}},
		{Code: "61719002", Name: "Crown of scalp", Display: "Skin of vertex of scalp", Region: RegionHeadNeck, Synonyms: []string{"vertex", "top of head"}},
		{Code: "79951008", Name: "Back of scalp", Display: "Skin of occipital region", Region: RegionHeadNeck, Synonyms: []string{"occipital", "occiput"}},
		{Code: "52795006", Name: "Forehead", Display: "Forehead structure", Region: RegionHeadNeck, Synonyms: []string{"brow", "frontal"}},
		{Code: "16621002", Name: "Temple", Display: "Skin of temporal region", Region: RegionHeadNeck, Synonyms: []string{"temporal"}, Paired: true},
		{Code: "367577003", Name: "Eyebrow", Display: "Skin of eyebrow", Region: RegionHeadNeck, Synonyms: []string{"brow", "supraorbital"}, Paired: true},
		{Code: "80243003", Name: "Eyelid", Display: "Eyelid structure", Region: RegionHeadNeck, Synonyms: []string{"lid"}, Paired: true},
		{Code: "41310005", Name: "Upper eyelid", Display: "Skin of upper eyelid", Region: RegionHeadNeck, Synonyms: []string{"lid"}, Paired: true},
		{Code: "40069000", Name: "Lower eyelid", Display: "Skin of lower eyelid", Region: RegionHeadNeck, Synonyms: []string{"lid"}, Paired: true},
		{Code: "27887005", Name: "Inner corner of eye", Display: "Skin of medial canthus", Region: RegionHeadNeck, Synonyms: []string{"medial canthus"}, Paired: true},
		{Code: "37671003", Name: "Outer corner of eye", Display: "Skin of lateral canthus", Region: RegionHeadNeck, Synonyms: []string{"lateral canthus", "crow's feet"}, Paired: true},
		{Code: "81745001", Name: "Eye", Display: "Structure of eye proper", Region: RegionHeadNeck, Synonyms: []string{"conjunctiva", "ocular"}, Paired: true},
		{Code: "45206002", Name: "Nose", Display: "Nasal structure", Region: RegionHeadNeck, Synonyms: []string{"nasal"}},
		{Code: "79283007", Name: "Tip of nose", Display: "Skin of tip of nose", Region: RegionHeadNeck, Synonyms: []string{"nasal tip"}},
		{Code: "68598004", Name: "Nostril wing", Display: "Skin of ala nasi", Region: RegionHeadNeck, Synonyms: []string{"ala", "alar", "nostril"}, Paired: true},
		{Code: "314395006", Name: "Side of nose", Display: "Skin of side of nose", Region: RegionHeadNeck, Synonyms: []string{"nasal sidewall"}, Paired: true},
		{Code: "37108007", Name: "Nasolabial fold", Display: "Skin of nasolabial fold", Region: RegionHeadNeck, Synonyms: []string{"smile line"}, Paired: true},
		{Code: "60819002", Name: "Cheek", Display: "Cheek structure", Region: RegionHeadNeck, Synonyms: []string{"buccal", "malar"}, Paired: true},
		{Code: "48477009", Name: "Lip", Display: "Lip structure", Region: RegionHeadNeck, Synonyms: []string{"mouth", "labial"}},
		{Code: "16251004", Name: "Upper lip", Display: "Skin of upper lip", Region: RegionHeadNeck, Synonyms: []string{"lip"}},
		{Code: "66934001", Name: "Lower lip", Display: "Skin of lower lip", Region: RegionHeadNeck, Synonyms: []string{"lip"}},
		{Code: "84365009", Name: "Philtrum", Display: "Skin of philtrum", Region: RegionHeadNeck, Synonyms: []string{"upper lip groove"}},
		{Code: "110488009", Name: "Around the mouth", Display: "Skin of perioral region of face", Region: RegionHeadNeck, Synonyms: []string{"perioral"}},
		{Code: "23747009", Name: "Chin", Display: "Skin of chin", Region: RegionHeadNeck, Synonyms: []string{"mental"}},
		{Code: "244097004", Name: "Jawline", Display: "Skin of jawline", Region: RegionHeadNeck, Synonyms: []string{"jaw", "mandible"}, Paired: true},
		{Code: "34926004", Name: "Under the chin", Display: "Skin of submental area", Region: RegionHeadNeck, Synonyms: []string{"submental"}},
		{Code: "123851003", Name: "Mouth", Display: "Mouth region structure", Region: RegionHeadNeck, Synonyms: []string{"oral"}},
		{Code: "113277000", Name: "Inside of mouth", Display: "Oral mucosa", Region: RegionHeadNeck, Synonyms: []string{"oral mucosa", "buccal mucosa", "gum"}},
		{Code: "21974007", Name: "Tongue", Display: "Tongue structure", Region: RegionHeadNeck, Synonyms: []string{"lingual"}},
		{Code: "117590005", Name: "Ear", Display: "Ear structure", Region: RegionHeadNeck, Synonyms: []string{"auricle", "pinna"}, Paired: true},
		{Code: "79313003", Name: "Rim of ear", Display: "Skin of helix of ear", Region: RegionHeadNeck, Synonyms: []string{"helix", "pinna"}, Paired: true},
		{Code: "2059009", Name: "Earlobe", Display: "Skin of ear lobule", Region: RegionHeadNeck, Synonyms: []string{"lobule", "ear lobe"}, Paired: true},
		{Code: "86719006", Name: "In front of ear", Display: "Skin of preauricular region", Region: RegionHeadNeck, Synonyms: []string{"preauricular"}, Paired: true},
		{Code: "24483006", Name: "Behind ear", Display: "Skin of postauricular region", Region: RegionHeadNeck, Synonyms: []string{"postauricular", "retroauricular"}, Paired: true},
		{Code: "86409001", Name: "Ear canal", Display: "Skin of external auditory canal", Region: RegionHeadNeck, Synonyms: []string{"external auditory canal", "meatus"}, Paired: true},
		{Code: "89545001", Name: "Face", Display: "Face structure", Region: RegionHeadNeck, Synonyms: []string{"facial"}},
		{Code: "69536005", Name: "Head", Display: "Head structure", Region: RegionHeadNeck},
		{Code: "45048000", Name: "Neck", Display: "Neck structure", Region: RegionHeadNeck, Synonyms: []string{"cervical"}},
		{Code: "11584001", Name: "Front of neck", Display: "Skin of anterior portion of neck", Region: RegionHeadNeck, Synonyms: []string{"throat", "anterior neck"}},
		{Code: "5272005", Name: "Side of neck", Display: "Skin of lateral portion of neck", Region: RegionHeadNeck, Synonyms: []string{"lateral neck"}, Paired: true},
		{Code: "4658004", Name: "Back of neck", Display: "Skin of nuchal region", Region: RegionHeadNeck, Synonyms: []string{"nape", "nuchal"}},
		{Code: "76072005", Name: "Above collarbone", Display: "Skin of supraclavicular region of neck", Region: RegionHeadNeck, Synonyms: []string{"supraclavicular", "clavicle"}, Paired: true},

		// Trunk.
		{Code: "51185008", Name: "Chest", Display: "Thoracic structure", Region: RegionTrunk, Synonyms: []string{"thorax", "thoracic"}},
		{Code: "244106003", Name: "Front of chest", Display: "Skin of anterior surface of thorax", Region: RegionTrunk, Synonyms: []string{"anterior chest", "chest wall"}},
		{Code: "244107007", Name: "Breastbone area", Display: "Sternal skin", Region: RegionTrunk, Synonyms: []string{"sternum", "sternal", "presternal"}},
		{Code: "66288003", Name: "Below collarbone", Display: "Skin of infraclavicular region", Region: RegionTrunk, Synonyms: []string{"infraclavicular"}, Paired: true},
		{Code: "76752008", Name: "Breast", Display: "Breast structure", Region: RegionTrunk, Synonyms: []string{"mammary"}, Paired: true, Sensitive: true},
		{Code: "54468004", Name: "Nipple", Display: "Skin of nipple", Region: RegionTrunk, Synonyms: []string{"breast"}, Paired: true, Sensitive: true},
		{Code: "72005009", Name: "Areola", Display: "Skin of areola", Region: RegionTrunk, Synonyms: []string{"breast", "nipple"}, Paired: true, Sensitive: true},
		{Code: "91470000", Name: "Armpit", Display: "Axillary region structure", Region: RegionTrunk, Synonyms: []string{"axilla", "underarm"}, Paired: true},
		{Code: "818981001", Name: "Abdomen", Display: "Abdomen structure", Region: RegionTrunk, Synonyms: []string{"belly", "tummy", "stomach"}},
		{Code: "699935000", Name: "Upper abdomen", Display: "Skin of upper abdomen", Region: RegionTrunk, Synonyms: []string{"belly", "tummy"}},
		{Code: "699914002", Name: "Lower abdomen", Display: "Skin of lower abdomen", Region: RegionTrunk, Synonyms: []string{"belly", "tummy"}},
		{Code: "27947004", Name: "Epigastrium", Display: "Epigastric region structure", Region: RegionTrunk, Synonyms: []string{"epigastric", "upper abdomen"}},
		{Code: "315003", Name: "Navel", Display: "Skin of umbilicus", Region: RegionTrunk, Synonyms: []string{"umbilicus", "belly button"}},
		{Code: "58602004", Name: "Flank", Display: "Flank structure", Region: RegionTrunk, Synonyms: []string{"side", "loin"}, Paired: true},
		{Code: "77568009", Name: "Back", Display: "Back structure, excluding buttocks", Region: RegionTrunk, Synonyms: []string{"dorsal"}},
		{Code: "699893008", Name: "Upper back", Display: "Skin of back of upper thoracic region", Region: RegionTrunk, Synonyms: []string{"scapular", "shoulder blade"}},
		{Code: "37822005", Name: "Lower back", Display: "Lower back structure", Region: RegionTrunk, Synonyms: []string{"lumbar", "small of back"}},
		{Code: "16982005", Name: "Shoulder", Display: "Shoulder region structure", Region: RegionTrunk, Synonyms: []string{"deltoid"}, Paired: true},
		{Code: "46862004", Name: "Buttock", Display: "Buttock structure", Region: RegionTrunk, Synonyms: []string{"gluteal", "bottom"}, Paired: true},
		{Code: "63029009", Name: "Buttock crease", Display: "Skin of gluteal fold", Region: RegionTrunk, Synonyms: []string{"gluteal fold"}, Paired: true},
		{Code: "26893007", Name: "Groin", Display: "Inguinal region structure", Region: RegionTrunk, Synonyms: []string{"inguinal"}, Paired: true},
		{Code: "280387007", Name: "Groin crease", Display: "Groin skin crease", Region: RegionTrunk, Synonyms: []string{"inguinal fold", "genitocrural"}, Paired: true},

		// Upper limb.
		{Code: "53120007", Name: "Arm", Display: "Upper limb structure", Region: RegionUpperLimb, Synonyms: []string{"upper limb", "upper extremity"}, Paired: true},
		{Code: "40983000", Name: "Upper arm", Display: "Structure of upper limb between shoulder and elbow", Region: RegionUpperLimb, Synonyms: []string{"arm", "biceps", "triceps"}, Paired: true},
		{Code: "127949000", Name: "Elbow", Display: "Elbow region structure", Region: RegionUpperLimb, Synonyms: []string{"olecranon"}, Paired: true},
		{Code: "17957002", Name: "Inner elbow", Display: "Skin of antecubital fossa", Region: RegionUpperLimb, Synonyms: []string{"antecubital", "cubital fossa", "elbow crease"}, Paired: true},
		{Code: "14975008", Name: "Forearm", Display: "Forearm structure", Region: RegionUpperLimb, Synonyms: []string{"arm", "lower arm"}, Paired: true},
		{Code: "8205005", Name: "Wrist", Display: "Wrist region structure", Region: RegionUpperLimb, Synonyms: []string{"carpal"}, Paired: true},
		{Code: "85562004", Name: "Hand", Display: "Hand structure", Region: RegionUpperLimb, Synonyms: []string{"manual"}, Paired: true},
		{Code: "70887009", Name: "Palm", Display: "Skin of palm of hand", Region: RegionUpperLimb, Synonyms: []string{"palmar", "hand"}, Paired: true},
		{Code: "281642007", Name: "Back of hand", Display: "Skin of part of dorsal surface of hand", Region: RegionUpperLimb, Synonyms: []string{"dorsum of hand", "hand"}, Paired: true},
		{Code: "7569003", Name: "Finger", Display: "Finger structure", Region: RegionUpperLimb, Synonyms: []string{"digit"}, Paired: true},
		{Code: "76505004", Name: "Thumb", Display: "Thumb structure", Region: RegionUpperLimb, Synonyms: []string{"finger", "digit", "pollex"}, Paired: true},
		{Code: "83738005", Name: "Index finger", Display: "Index finger structure", Region: RegionUpperLimb, Synonyms: []string{"finger", "digit", "second finger"}, Paired: true},
		{Code: "65531009", Name: "Middle finger", Display: "Middle finger structure", Region: RegionUpperLimb, Synonyms: []string{"finger", "digit", "third finger"}, Paired: true},
		{Code: "82002001", Name: "Ring finger", Display: "Ring finger structure", Region: RegionUpperLimb, Synonyms: []string{"finger", "digit", "fourth finger"}, Paired: true},
		{Code: "12406000", Name: "Little finger", Display: "Little finger structure", Region: RegionUpperLimb, Synonyms: []string{"finger", "digit", "pinky", "fifth finger"}, Paired: true},
		{Code: "770809003", Name: "Fingernail", Display: "Nail unit of finger", Region: RegionUpperLimb, Synonyms: []string{"nail", "finger", "paronychia"}, Paired: true},
		{Code: "770810008", Name: "Thumbnail", Display: "Nail unit of thumb", Region: RegionUpperLimb, Synonyms: []string{"nail", "thumb"}, Paired: true},
		{Code: "770815003", Name: "Index fingernail", Display: "Nail unit of index finger", Region: RegionUpperLimb, Synonyms: []string{"nail", "finger"}, Paired: true},
		{Code: "770816002", Name: "Middle fingernail", Display: "Nail unit of middle finger", Region: RegionUpperLimb, Synonyms: []string{"nail", "finger"}, Paired: true},
		{Code: "770817006", Name: "Ring fingernail", Display: "Nail unit of ring finger", Region: RegionUpperLimb, Synonyms: []string{"nail", "finger"}, Paired: true},
		{Code: "770818001", Name: "Little fingernail", Display: "Nail unit of little finger", Region: RegionUpperLimb, Synonyms: []string{"nail", "finger", "pinky"}, Paired: true},

		// Lower limb.
		{Code: "61685007", Name: "Leg", Display: "Lower limb structure", Region: RegionLowerLimb, Synonyms: []string{"lower limb", "lower extremity"}, Paired: true},
		{Code: "29836001", Name: "Hip", Display: "Hip region structure", Region: RegionLowerLimb, Synonyms: []string{"trochanter"}, Paired: true},
		{Code: "68367000", Name: "Thigh", Display: "Thigh structure", Region: RegionLowerLimb, Synonyms: []string{"leg", "upper leg", "femoral"}, Paired: true},
		{Code: "73958006", Name: "Inner thigh", Display: "Skin of medial surface of thigh", Region: RegionLowerLimb, Synonyms: []string{"thigh", "medial thigh"}, Paired: true},
		{Code: "72696002", Name: "Knee", Display: "Knee region structure", Region: RegionLowerLimb, Synonyms: []string{"patella", "kneecap"}, Paired: true},
		{Code: "32361000", Name: "Back of knee", Display: "Popliteal fossa structure", Region: RegionLowerLimb, Synonyms: []string{"popliteal", "knee"}, Paired: true},
		{Code: "30021000", Name: "Lower leg", Display: "Structure of lower extremity from knee to ankle", Region: RegionLowerLimb, Synonyms: []string{"leg", "below knee"}, Paired: true},
		{Code: "78234002", Name: "Shin", Display: "Shin structure", Region: RegionLowerLimb, Synonyms: []string{"leg", "pretibial", "tibial"}, Paired: true},
		{Code: "53840002", Name: "Calf", Display: "Calf of leg structure", Region: RegionLowerLimb, Synonyms: []string{"leg", "sural"}, Paired: true},
		{Code: "344001", Name: "Ankle", Display: "Ankle region structure", Region: RegionLowerLimb, Synonyms: []string{"malleolus"}, Paired: true},
		{Code: "56459004", Name: "Foot", Display: "Foot structure", Region: RegionLowerLimb, Synonyms: []string{"pedal"}, Paired: true},
		{Code: "2402003", Name: "Top of foot", Display: "Structure of dorsum of foot", Region: RegionLowerLimb, Synonyms: []string{"dorsum of foot", "instep", "foot"}, Paired: true},
		{Code: "76853006", Name: "Heel", Display: "Heel structure", Region: RegionLowerLimb, Synonyms: []string{"calcaneal", "foot", "sole"}, Paired: true},
		{Code: "29707007", Name: "Toe", Display: "Toe structure", Region: RegionLowerLimb, Synonyms: []string{"digit"}, Paired: true},
		{Code: "78883009", Name: "Big toe", Display: "Great toe structure", Region: RegionLowerLimb, Synonyms: []string{"great toe", "hallux", "toe"}, Paired: true},
		{Code: "55078004", Name: "Second toe", Display: "Second toe structure", Region: RegionLowerLimb, Synonyms: []string{"toe"}, Paired: true},
		{Code: "78132007", Name: "Third toe", Display: "Third toe structure", Region: RegionLowerLimb, Synonyms: []string{"toe"}, Paired: true},
		{Code: "80349001", Name: "Fourth toe", Display: "Fourth toe structure", Region: RegionLowerLimb, Synonyms: []string{"toe"}, Paired: true},
		{Code: "39915008", Name: "Little toe", Display: "Fifth toe structure", Region: RegionLowerLimb, Synonyms: []string{"fifth toe", "toe"}, Paired: true},
		{Code: "770805009", Name: "Toenail", Display: "Nail unit of toe", Region: RegionLowerLimb, Synonyms: []string{"nail", "toe", "ingrown"}, Paired: true},
		{Code: "770822006", Name: "Big toenail", Display: "Nail unit of great toe", Region: RegionLowerLimb, Synonyms: []string{"nail", "toe", "hallux", "ingrown"}, Paired: true},
		{Code: "770823001", Name: "Second toenail", Display: "Nail unit of second toe", Region: RegionLowerLimb, Synonyms: []string{"nail", "toe"}, Paired: true},
		{Code: "770825008", Name: "Third toenail", Display: "Nail unit of third toe", Region: RegionLowerLimb, Synonyms: []string{"nail", "toe"}, Paired: true},
		{Code: "770821004", Name: "Fourth toenail", Display: "Nail unit of fourth toe", Region: RegionLowerLimb, Synonyms: []string{"nail", "toe"}, Paired: true},
		{Code: "770820003", Name: "Little toenail", Display: "Nail unit of fifth toe", Region: RegionLowerLimb, Synonyms: []string{"nail", "toe", "fifth"}, Paired: true},

		// Genital and perianal: all sensitive.
		{Code: "60944009", Name: "Genital skin", Display: "Skin of external genitalia", Region: RegionGenital, Synonyms: []string{"genitals", "genitalia"}, Sensitive: true},
		{Code: "11708003", Name: "Pubic area", Display: "Hypogastric region structure", Region: RegionGenital, Synonyms: []string{"suprapubic", "pubic", "hypogastric"}, Sensitive: true},
		{Code: "18911002", Name: "Penis", Display: "Penile structure", Region: RegionGenital, Synonyms: []string{"genitals", "penile"}, Sensitive: true},
		{Code: "7991003", Name: "Glans penis", Display: "Skin of glans penis", Region: RegionGenital, Synonyms: []string{"genitals", "penis", "head of penis"}, Sensitive: true},
		{Code: "244118007", Name: "Shaft of penis", Display: "Skin of shaft of penis", Region: RegionGenital, Synonyms: []string{"genitals", "penis"}, Sensitive: true},
		{Code: "20233005", Name: "Scrotum", Display: "Scrotal structure", Region: RegionGenital, Synonyms: []string{"genitals", "scrotal"}, Sensitive: true},
		{Code: "45292006", Name: "Vulva", Display: "Vulval structure", Region: RegionGenital, Synonyms: []string{"genitals", "vulval"}, Sensitive: true},
		{Code: "128252004", Name: "Labium majus", Display: "Skin of labium majus", Region: RegionGenital, Synonyms: []string{"genitals", "labia", "vulva"}, Paired: true, Sensitive: true},
		{Code: "128253009", Name: "Labium minus", Display: "Skin of labium minus", Region: RegionGenital, Synonyms: []string{"genitals", "labia", "vulva"}, Paired: true, Sensitive: true},
		{Code: "38864007", Name: "Perineum", Display: "Perineal structure", Region: RegionGenital, Synonyms: []string{"perineal", "taint"}, Sensitive: true},
		{Code: "53505006", Name: "Anus", Display: "Anal structure", Region: RegionGenital, Synonyms: []string{"anal"}, Sensitive: true},
		{Code: "181522009", Name: "Perianal skin", Display: "Entire skin of perianal area", Region: RegionGenital, Synonyms: []string{"perianal", "anal", "bottom"}, Sensitive: true},
	}
)

// BodySites returns the body-site value set in head-to-toe order. The
// slice is a fresh copy on every call.
func BodySites() []BodySite {
	out := make([]BodySite, len(bodySites))
	for i := range bodySites {
		out[i] = copySite(bodySites[i])
	}
	return out
}

// LookupBodySite returns the body site with the SNOMED CT code, and
// whether it is in the value set.
func LookupBodySite(code string) (BodySite, bool) {
	for i := range bodySites {
		if bodySites[i].Code == code {
			return copySite(bodySites[i]), true
		}
	}
	return BodySite{}, false
}

// SearchBodySites returns the body sites matching query, for a picker that
// narrows as the GP types. Every word of the query must begin a word of
// the site's name, SNOMED CT term or synonyms, case-insensitively: "fore"
// finds Forehead and Forearm, "big toe" finds Big toe and Big toenail,
// "pinky" finds Little finger. Laterality is chosen separately, so "left"
// matches nothing. Sites whose name starts with the query come first, then
// other matches on the name, then matches on synonyms or the SNOMED CT
// term; each rank keeps the head-to-toe order. An empty query returns every
// site. The result is a fresh slice.
func SearchBodySites(query string) []BodySite {
	words := searchWords(query)
	type hit struct {
		rank, pos int
	}
	var hits []hit
	for i := range bodySites {
		s := &bodySites[i]
		if r, ok := matchRank(words, s.Name, append([]string{s.Display}, s.Synonyms...)); ok {
			hits = append(hits, hit{r, i})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return a.rank - b.rank })
	out := make([]BodySite, len(hits))
	for i, h := range hits {
		out[i] = copySite(bodySites[h.pos])
	}
	return out
}

// Lateralities returns the laterality value set (left, right, bilateral,
// midline). The slice is a fresh copy on every call.
func Lateralities() []Laterality {
	out := lateralities
	return out[:]
}

// LookupLaterality returns the laterality with the SNOMED CT code, and
// whether it is in the value set.
func LookupLaterality(code string) (Laterality, bool) {
	for _, l := range lateralities {
		if l.Code == code {
			return l, true
		}
	}
	return Laterality{}, false
}

// Views returns the view value set. The slice is a fresh copy on every call.
func Views() []View {
	out := make([]View, len(views))
	for i := range views {
		out[i] = copyView(views[i])
	}
	return out
}

// LookupView returns the view with the code, and whether it is in the
// value set.
func LookupView(code string) (View, bool) {
	for i := range views {
		if views[i].Code == code {
			return copyView(views[i]), true
		}
	}
	return View{}, false
}

// SearchViews returns the views matching query, ranked as in
// [SearchBodySites].
func SearchViews(query string) []View {
	words := searchWords(query)
	type hit struct{ rank, pos int }
	var hits []hit
	for i := range views {
		v := &views[i]
		if r, ok := matchRank(words, v.Name, append([]string{v.Code, v.Definition}, v.Synonyms...)); ok {
			hits = append(hits, hit{r, i})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return a.rank - b.rank })
	out := make([]View, len(hits))
	for i, h := range hits {
		out[i] = copyView(views[h.pos])
	}
	return out
}

func copySite(s BodySite) BodySite {
	s.Synonyms = slices.Clone(s.Synonyms)
	return s
}

func copyView(v View) View {
	v.Synonyms = slices.Clone(v.Synonyms)
	return v
}

// searchWords splits a query into lower-case words.
func searchWords(q string) []string {
	return strings.FieldsFunc(strings.ToLower(q), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
}

// matchRank reports whether every word prefixes some word of name or of
// the other texts, and how good the match is: 0 when name starts with the
// first word, 1 when all words match the name, 2 otherwise.
func matchRank(words []string, name string, others []string) (int, bool) {
	if len(words) == 0 {
		return 0, true
	}
	nameWords := searchWords(name)
	var all []string
	all = append(all, nameWords...)
	for _, o := range others {
		all = append(all, searchWords(o)...)
	}
	inName := true
	for _, w := range words {
		if !hasPrefixWord(all, w) {
			return 0, false
		}
		if !hasPrefixWord(nameWords, w) {
			inName = false
		}
	}
	switch {
	case inName && strings.HasPrefix(nameWords[0], words[0]):
		return 0, true
	case inName:
		return 1, true
	}
	return 2, true
}

func hasPrefixWord(ws []string, prefix string) bool {
	for _, w := range ws {
		if strings.HasPrefix(w, prefix) {
			return true
		}
	}
	return false
}
