//! The bulk jobs popup's state (`J`): the jobs as last read, newest first,
//! and which one is selected. Read when it opens and every tick while open.

use crate::engine::JobProgress;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobList {
    pub jobs: Vec<JobProgress>,
    pub selected: usize,
    /// The first read has answered.
    pub loaded: bool,
    /// The last read failed, with this.
    pub error: Option<String>,
}

impl JobList {
    /// Takes a read of the jobs, keeping the selected job selected.
    pub fn set(&mut self, jobs: Vec<JobProgress>) {
        let selected = self.selected_job().map(|job| job.id.clone());
        self.jobs = jobs;
        self.loaded = true;
        self.error = None;
        self.selected = selected
            .and_then(|id| self.jobs.iter().position(|job| job.id == id))
            .unwrap_or(0);
    }

    pub fn selected_job(&self) -> Option<&JobProgress> {
        self.jobs.get(self.selected)
    }

    /// Moves the selection by `by` rows, within the list.
    pub fn step(&mut self, by: isize) {
        let last = self.jobs.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(by).min(last);
    }

    /// (running, finished) jobs in the list.
    pub fn counts(&self) -> (usize, usize) {
        let finished = self.jobs.iter().filter(|job| job.finished).count();
        (self.jobs.len() - finished, finished)
    }
}
