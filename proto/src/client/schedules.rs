//! The schedule calls of [`Client`]: create, list, get, pause, resume, delete.

use super::{Client, ClientError};
use crate::pb;

impl Client {
    /// Creates a schedule.
    pub async fn create_schedule(&self, request: pb::CreateScheduleRequest) -> Result<pb::Schedule, ClientError> {
        Ok(self.inner.clone().create_schedule(request).await?.into_inner())
    }

    /// Every schedule, by name.
    pub async fn list_schedules(&self) -> Result<Vec<pb::Schedule>, ClientError> {
        Ok(self.inner.clone().list_schedules(pb::ListSchedulesRequest {}).await?.into_inner().schedules)
    }

    /// One schedule, with its last and next firing and the jobs it posted.
    pub async fn get_schedule(&self, name: impl Into<String>) -> Result<pb::Schedule, ClientError> {
        Ok(self.inner.clone().get_schedule(pb::GetScheduleRequest { name: name.into() }).await?.into_inner())
    }

    /// Pauses a schedule: it posts nothing until resumed.
    pub async fn pause_schedule(&self, name: impl Into<String>) -> Result<pb::Schedule, ClientError> {
        Ok(self.inner.clone().pause_schedule(pb::PauseScheduleRequest { name: name.into() }).await?.into_inner())
    }

    /// Resumes a paused schedule from its next tick.
    pub async fn resume_schedule(&self, name: impl Into<String>) -> Result<pb::Schedule, ClientError> {
        Ok(self.inner.clone().resume_schedule(pb::ResumeScheduleRequest { name: name.into() }).await?.into_inner())
    }

    /// Removes a schedule.
    pub async fn delete_schedule(&self, name: impl Into<String>) -> Result<(), ClientError> {
        self.inner.clone().delete_schedule(pb::DeleteScheduleRequest { name: name.into() }).await?;
        Ok(())
    }
}
