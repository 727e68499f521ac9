package clinicalimages

import (
	"io"
	"net/http"
)

// The history endpoints (desktop only, registered in routes):
//
//	GET /history[?image=<image id>|?bodySite=<SNOMED>&laterality=<SNOMED>]
//	    200 {"items": [HistoryItem...]}: the patient's earlier photos from
//	    ALEX, newest first, the compared body site first (sameSite).
//	GET /history/{id}/thumbnail
//	    200 image/jpeg, Cache-Control: private, no-store; 404 not_found for
//	    an id this session was not given.

// history answers GET /history.
func (a *api) history(w http.ResponseWriter, r *http.Request, sid string) {
	q := r.URL.Query()
	items, err := a.s.History(r.Context(), sid, HistoryQuery{
		Image: q.Get("image"), BodySite: q.Get("bodySite"), Laterality: q.Get("laterality"),
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if items == nil {
		items = []HistoryItem{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

// historyThumbnail answers GET /history/{id}/thumbnail.
func (a *api) historyThumbnail(w http.ResponseWriter, r *http.Request, sid string) {
	rc, ct, err := a.s.HistoryThumbnail(r.Context(), sid, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "private, no-store")
	_, _ = io.Copy(w, rc)
}
