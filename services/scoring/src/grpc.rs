//! `herald.v1.Scoring`: look up a win and explain its number.

use std::sync::Arc;

use herald_catalog::Catalog;
use herald_proto::v1::{ExplainRequest, Explanation, GetWinRequest, Win, scoring_server::Scoring};
use herald_runtime::ApiError;
use tonic::{Request, Response, Status};

use crate::{explain, store::Store};

pub struct ScoringApi {
    pub store: Store,
    pub catalog: Arc<Catalog>,
}

fn internal(e: crate::store::StoreError) -> Status {
    tracing::error!(error = %e, "scoring query failed");
    ApiError::internal("the win could not be read; see the scoring logs").into()
}

#[tonic::async_trait]
impl Scoring for ScoringApi {
    async fn get_win(&self, request: Request<GetWinRequest>) -> Result<Response<Win>, Status> {
        let id = request.into_inner().win_id;
        match self.store.win(&id).await.map_err(internal)? {
            Some(win) => Ok(Response::new(win)),
            None => Err(ApiError::not_found(format!("no win with id {id:?}")).into()),
        }
    }

    async fn explain(
        &self,
        request: Request<ExplainRequest>,
    ) -> Result<Response<Explanation>, Status> {
        let id = request.into_inner().id;
        let win = match self.store.win(&id).await.map_err(internal)? {
            Some(win) => win,
            None => match self.store.event_outcome(&id).await.map_err(internal)? {
                Some(outcome) => match outcome.win {
                    Some(win) => win,
                    None => {
                        return Err(ApiError::not_found(format!(
                            "event {id} earned no win: {}",
                            outcome.note.unwrap_or(outcome.outcome)
                        ))
                        .into());
                    }
                },
                None => {
                    return Err(ApiError::not_found(format!(
                        "no win or scored event with id {id:?}"
                    ))
                    .into());
                }
            },
        };
        let text = explain::explain(&win, &self.catalog);
        Ok(Response::new(Explanation {
            win: Some(win),
            text,
        }))
    }
}
