//! Exactly-once mode: the open transaction's life (begin, doom, commit, abort and rewind) and
//! refusals remembered across a rewind. See the parent module's documentation.

use super::{Core, display_partitions};
use crate::PipelineError;
use crate::dead_letter::refused_dead_letter_record;
use avro_codec::SchemaRegistry;
use offset_tracker::{Commit, Ticket};
use ports::{
    DeliveryReport, InboundRecord, OffsetCommitter, OutboundRecord, RecordSink, RecordSource,
    TopicPartition,
};
use router_core::DeadLetterCode;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tracing::{info, warn};

/// Exactly-once mode: transactions (see the module documentation).
impl<K: RecordSink, C: OffsetCommitter, R: SchemaRegistry> Core<K, C, R> {
    /// Drops records read before a rewind of their partition, and opens a transaction for
    /// the others if none is open. False when nothing is left to process (or the producer
    /// cannot open one: `fatal` is set and the run ends after this step).
    pub(super) fn begin_transaction(&mut self, records: &mut Vec<InboundRecord>) -> bool {
        if !self.rewinding.is_empty() {
            let rewinding = &self.rewinding;
            records.retain(|record| {
                !rewinding
                    .iter()
                    .any(|tp| tp.partition == record.partition && *tp.topic == *record.topic)
            });
        }
        if records.is_empty() {
            return false;
        }
        if self.transaction_open {
            return true;
        }
        match self.committer.begin_transaction() {
            Ok(()) => {
                self.transaction_open = true;
                true
            }
            Err(error) => {
                // Nothing of the batch is tracked: the run must end before any later record
                // is, or a commit could pass these.
                self.fatal = Some(error);
                false
            }
        }
    }

    pub(super) fn doom(&mut self, reason: String) {
        if self.doomed.is_none() {
            warn!(%reason, "The open transaction must be aborted.");
            self.doomed = Some(reason);
        }
    }

    /// Forgets output `tag` (its transaction is aborted, or it failed in one).
    pub(super) fn drop_output(&mut self, tag: usize) {
        let Some(slot) = self.outputs.remove(tag) else {
            return;
        };
        if slot.failures >= self.config.retry.budget {
            self.stats.stuck_records.fetch_sub(1, Relaxed);
        }
        if let Some(input) = slot.input {
            self.inputs.release(input);
        }
    }

    /// Exactly-once mode: the routed output `tag` was refused for good by `output` with
    /// `error`; the transaction aborts, and the refusal is remembered by input and output
    /// topic, so that the replay dead-letters it (see [`Self::dead_letter_known_refusal`]).
    pub(super) fn remember_refusal(
        &mut self,
        tag: usize,
        output: &Arc<str>,
        error: &ports::AdapterError,
    ) {
        let Some(slot) = self.outputs.get(tag) else {
            return;
        };
        let (None, Some(input)) = (slot.dead_letter_code, slot.input) else {
            return;
        };
        let Some(input) = self.inputs.get(input) else {
            return;
        };
        warn!(
            %error,
            topic = %output,
            input_topic = %input.topic,
            partition = input.partition,
            offset = input.offset,
            "The broker refused an output record for good; the transaction is aborted and the input is dead-lettered as `refused` for that output when it is read again."
        );
        let error = error.to_string();
        if !self
            .refusals
            .remember(&input.topic, input.partition, input.offset, output, &error)
        {
            warn!(
                remembered = self.refusals.len(),
                "Too many refused outputs remembered; this one is produced again after the rewind."
            );
        }
    }

    /// Exactly-once replay: when the broker refused `output` of input `input` for good in an
    /// aborted transaction, sends a `refused` dead letter of the input in its place (in the
    /// input's tally, one output replaces the other) and releases the input's value for it.
    /// Gives `output` back when no refusal is remembered for it.
    pub(super) fn dead_letter_known_refusal(
        &mut self,
        ticket: Ticket,
        input: usize,
        output: OutboundRecord,
    ) -> Result<(), OutboundRecord> {
        let Some(slot) = self.inputs.get(input) else {
            return Err(output);
        };
        let Some(error) =
            self.refusals
                .get(&slot.topic, slot.partition, slot.offset, &output.topic)
        else {
            return Err(output);
        };
        info!(
            %error,
            topic = %output.topic,
            input_topic = %slot.topic,
            partition = slot.partition,
            offset = slot.offset,
            "Dead-lettering as `refused` an output the broker refused for good before the rewind."
        );
        let dead_letter = refused_dead_letter_record(
            &self.config.dead_letter_topic,
            output,
            slot,
            &error,
            &self.config.processor_id,
        );
        self.inputs.release(input);
        self.send_dead_letter(ticket, dead_letter, DeadLetterCode::Refused, false);
        Ok(())
    }

    /// Commits the open transaction once every record read in it is complete (every output
    /// acknowledged), with the tracker's safe positions of every partition as its offsets.
    /// True when no transaction is open any more; on failure the transaction is doomed (or
    /// `fatal` set) and false comes back.
    pub(super) async fn close_transaction(
        &mut self,
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
    ) -> bool {
        if !self.transaction_open {
            return true;
        }
        if self.doomed.is_some() || self.fatal.is_some() {
            return false;
        }
        let deadline = Instant::now() + self.config.drain_timeout;
        let drained = self
            .drain_until(reports, deadline, |tracker| tracker.total_in_flight() == 0)
            .await;
        if self.doomed.is_some() || self.fatal.is_some() {
            return false;
        }
        if !drained {
            self.doom(format!(
                "{} records of the transaction were not acknowledged within pipeline.drain_timeout_ms",
                self.tracker.total_in_flight()
            ));
            return false;
        }
        let commit = Commit {
            positions: self.tracker.committable(),
        };
        let asked = Instant::now();
        let answer = self.committer.commit(commit.positions.clone()).await;
        self.stats
            .commit_latency
            .observe_ms(asked.elapsed().as_millis() as i64);
        match answer {
            Ok(()) => {
                self.tracker.mark_committed(&commit, self.now());
                for position in &commit.positions {
                    self.refusals.forget_below(
                        &position.partition.topic,
                        position.partition.partition,
                        position.offset,
                    );
                }
                self.transaction_open = false;
                self.stats.commits.fetch_add(1, Relaxed);
                self.stats.transactions_committed.fetch_add(1, Relaxed);
                true
            }
            Err(error) => {
                self.stats.commit_failures.fetch_add(1, Relaxed);
                if error.is_fatal_transaction() {
                    self.fatal = Some(error);
                } else {
                    self.doom(format!("committing the transaction failed: {error}"));
                }
                false
            }
        }
    }

    /// A revoke in exactly-once mode: the open transaction is committed with every
    /// partition's offsets before the partitions move (or aborted, and the partitions kept
    /// are rewound); the revoked partitions are then forgotten.
    pub(super) async fn revoke_in_transaction(
        &mut self,
        partitions: &[TopicPartition],
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
    ) {
        let committed = self.close_transaction(reports).await;
        if !committed && self.fatal.is_none() {
            self.abort_and_rewind(reports).await;
        }
        for tp in partitions {
            self.tracker.revoke(tp);
            self.refusals.forget_partition(&tp.topic, tp.partition);
        }
        self.rewinding.retain(|tp| !partitions.contains(tp));
        self.pending_rewind
            .retain(|position| !partitions.contains(&position.partition));
        info!(
            partitions = %display_partitions(partitions),
            transaction_committed = committed,
            "Partitions revoked after their transaction closed."
        );
    }

    /// Aborts the open transaction and rewinds: every output of it is forgotten (after the
    /// producer reported each one, so that no late report can find a reused tag), the tracker
    /// forgets every record read since the last commit, and the source is to read those
    /// partitions again from the last committed positions.
    pub(super) async fn abort_and_rewind(
        &mut self,
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
    ) {
        let reason = self.doomed.take().unwrap_or_default();
        warn!(
            %reason,
            in_flight = self.tracker.total_in_flight(),
            "Aborting the transaction; its records are read and routed again from the last committed positions."
        );
        self.stats.transactions_aborted.fetch_add(1, Relaxed);
        if let Err(error) = self.committer.abort_transaction().await {
            self.fatal = Some(error);
            return;
        }
        self.transaction_open = false;
        // Outputs waiting for a retry are not in the producer: nothing will report them.
        for tag in self.retries.clear() {
            self.drop_output(tag);
        }
        let deadline = Instant::now() + self.config.drain_timeout;
        while self.outputs.len() > 0 {
            tokio::select! {
                report = reports.recv() => match report {
                    Some(report) => {
                        if let Err(failure) = &report.result
                            && failure.error.refuses_record()
                        {
                            self.remember_refusal(report.tag, &failure.record.topic, &failure.error);
                        }
                        self.drop_output(report.tag);
                    }
                    None => break,
                },
                _ = sleep_until(deadline) => break,
            }
        }
        if self.outputs.len() > 0 {
            self.fatal = Some(ports::AdapterError::Task {
                operation: "aborting the transaction",
                reason: format!(
                    "{} records of the aborted transaction got no delivery report within pipeline.drain_timeout_ms",
                    self.outputs.len()
                ),
            });
            return;
        }
        let assigned: Vec<_> = self.tracker.assigned().cloned().collect();
        for tp in assigned {
            if let Some(position) = self.tracker.rewind(&tp) {
                self.rewinding.push(position.partition.clone());
                self.pending_rewind.push(position);
            }
        }
        self.stats
            .in_flight
            .store(self.tracker.total_in_flight() as i64, Relaxed);
    }

    /// After each step in exactly-once mode: abort and rewind a doomed transaction, hand the
    /// rewind to the source, or end the run on a fatal transaction error.
    pub(super) async fn settle_transaction<S: RecordSource>(
        &mut self,
        source: &mut S,
        reports: &mut mpsc::UnboundedReceiver<DeliveryReport>,
    ) -> Result<(), PipelineError> {
        if self.doomed.is_some() && self.fatal.is_none() {
            self.abort_and_rewind(reports).await;
        }
        if let Some(error) = self.fatal.take() {
            tracing::error!(%error, "The transactional producer cannot go on; stopping without committing.");
            return Err(PipelineError::Transaction(error));
        }
        if !self.pending_rewind.is_empty() {
            let positions = std::mem::take(&mut self.pending_rewind);
            source.rewind(positions).map_err(PipelineError::Source)?;
        }
        Ok(())
    }
}
